// The chat page: ask the JSON API, render passages as text (never as HTML).
(function () {
  "use strict";
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const status = document.getElementById("status");
  const list = document.getElementById("passages");

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function render(data) {
    list.replaceChildren();
    if (!data.passages.length) {
      status.textContent = "Inga träffar.";
      return;
    }
    status.textContent = data.passages.length + " källor";
    for (const p of data.passages) {
      const item = el("li", "passage");
      item.appendChild(el("div", "meta", p.citation));
      item.appendChild(el("p", "text", p.text));
      const link = el("a", null, "Visa i sitt sammanhang");
      link.href = p.permalink;
      item.appendChild(link);
      list.appendChild(item);
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    status.textContent = "Söker …";
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: question }),
      });
      const data = await response.json();
      if (!response.ok) {
        status.textContent = data.error ? data.error.message : "Något gick fel.";
        return;
      }
      render(data);
    } catch (err) {
      status.textContent = "Tjänsten svarar inte.";
    }
  });
})();
