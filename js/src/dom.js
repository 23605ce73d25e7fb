// A tiny element builder for the controls.

export function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of [].concat(children)) node.append(child);
  return node;
}

export function select(options, value, onchange, title) {
  const node = h("select", { title, onchange: () => onchange(node.value) });
  for (const [v, label] of options) node.append(h("option", { value: v }, label));
  node.value = value;
  return node;
}

export function checkbox(label, checked, onchange, title) {
  const input = h("input", { type: "checkbox", checked, onchange: () => onchange(input.checked) });
  return [h("label", { class: "dsw-check", title }, [input, label]), input];
}
