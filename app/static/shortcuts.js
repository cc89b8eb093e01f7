// Undo / redo from the keyboard: ctrl-z (cmd-z), ctrl-shift-z and ctrl-y press the page's undo
// and redo buttons, so a key does exactly what the button does (one server call, the same
// messages). Keys typed into a text box, a number box or an editable area stay with that box:
// there ctrl-z undoes the typing.
() => {
  const typing = (el) => !!el && (el.isContentEditable ||
    (el.tagName === "TEXTAREA") ||
    (el.tagName === "INPUT" && !["checkbox", "radio", "button", "range"].includes(el.type)));
  document.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || ev.altKey || ev.repeat) return;
    if (typing(document.activeElement)) return;
    const key = ev.key.toLowerCase();
    let id = null;
    if (key === "z") id = ev.shiftKey ? "redo-btn" : "undo-btn";
    else if (key === "y" && !ev.shiftKey) id = "redo-btn";
    if (!id) return;
    const btn = document.getElementById(id);
    if (!btn || btn.disabled) return;
    ev.preventDefault();
    btn.click();
  });
}
