"""The REVEL quality bench: drag cases, named variants of the method and two baselines, metrics, reports.

python -m dragstream_widget bench quality --cases FILE --out DIR [--variants ...] [--limit N]
"""
