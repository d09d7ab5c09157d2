// Durable dashboard: the only script of our own. Copy buttons copy the JSON as
// shown (already redacted by the server). No inline scripts, so a strict CSP holds.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  var text = source.textContent;
  var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, function () { button.textContent = "Copy failed"; });
  } else {
    var range = document.createRange();
    range.selectNodeContents(source);
    var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
});
