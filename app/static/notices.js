// One message at a time. Gradio groups toasts of one type: a new warning is listed under the
// older ones still open, and the whole group closes on the oldest one's timer, so a fresh
// message could sit below a stale one and vanish after a second. Gradio's toasts are hidden
// (studio.css); each new toast message is shown here alone, for its own full duration.
() => {
  const DURATION_MS = __NOTICE_MS__;
  const seen = new WeakSet();
  const box = document.createElement("div");
  box.id = "studio-notice";
  box.setAttribute("role", "status");
  box.setAttribute("aria-live", "polite");
  box.hidden = true;
  const text = document.createElement("span");
  text.className = "sn-text";
  const close = document.createElement("button");
  close.type = "button";
  close.className = "sn-close";
  close.setAttribute("aria-label", "Close the message");
  close.textContent = "×";
  box.append(text, close);
  document.body.prepend(box);        // first in the page: the message a reader meets first
  let timer = null;
  const hide = () => { box.hidden = true; box.dataset.level = ""; };
  close.addEventListener("click", hide);
  const level = (node) => {
    for (const kind of ["error", "warning", "success", "info"]) {
      if (node.classList.contains(kind)) return kind;
    }
    return "info";
  };
  const show = (node) => {
    const message = (node.innerText || node.textContent || "").trim();
    if (!message) return;
    text.textContent = message;
    box.dataset.level = level(node);
    box.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(hide, DURATION_MS);
  };
  const scan = () => {
    for (const node of document.querySelectorAll(".toast-message-text")) {
      if (!seen.has(node)) { seen.add(node); show(node); }
    }
  };
  // the page mutates constantly (progress timers, the curve editor): look for messages only
  // when a mutation touches gradio's toast area
  const inToasts = (node) => node.nodeType === 1 && (node.closest(".toast-wrap") !== null
                                                     || node.querySelector(".toast-wrap") !== null);
  new MutationObserver((mutations) => {
    if (mutations.some((m) => inToasts(m.target) || Array.from(m.addedNodes).some(inToasts))) scan();
  }).observe(document.body, {childList: true, subtree: true});
  scan();
}
