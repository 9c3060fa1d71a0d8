// The alerts page: "select all" ticks every alert on the page for bulk acknowledgement.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll("input.pick")) box.checked = all.checked;
  });
});

// Bulk acknowledgement needs at least one ticked alert.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("ack-selected");
  if (!button) return;
  const refresh = () => {
    button.disabled = !document.querySelector("input.pick:checked");
  };
  document.getElementById("ack").addEventListener("change", refresh);
  refresh();
});
