// The side tabs: a button of the strip (role="tab", data-tab = the tab's column id) opens its
// tab; the column `#side-column` says which one is open (data-open), and studio.css shows only
// that one. Every tab's parts stay in the page, so updates reach them while they are closed.
() => {
  const open = (tabId) => {
    const column = document.getElementById("side-column");
    if (!column || !document.getElementById(tabId)) return;
    column.dataset.open = tabId;
    for (const btn of document.querySelectorAll("#side-tab-strip [role=tab]")) {
      btn.setAttribute("aria-selected", btn.dataset.tab === tabId ? "true" : "false");
    }
    // something resized while hidden (a canvas) draws again at its real size
    window.dispatchEvent(new Event("resize"));
  };
  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest && ev.target.closest("#side-tab-strip [role=tab]");
    if (btn) open(btn.dataset.tab);
  });
}
