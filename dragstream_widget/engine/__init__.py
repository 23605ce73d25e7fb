"""The method: drag targets (Eq. 1), the drag step (Eq. 2-3, 9-10), rectification (Eq. 4), the
frequency filter (Eq. 5-8), rollout, and the streaming session with its configuration."""
