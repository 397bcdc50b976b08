// The chat page. Everything from the server is rendered with textContent, never as HTML.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const form = $("ask");
  const input = $("question");
  const status = $("status");
  const log = $("conversation");
  const template = $("turn-template");
  let conversationId = null;
  let turnCount = 0;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Passage text with the answer's sentences marked; ranges are [start, end) offsets.
  function highlighted(text, ranges) {
    const wrap = el("p", "text");
    let at = 0;
    for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
      if (start < at) continue;
      wrap.appendChild(document.createTextNode(text.slice(at, start)));
      wrap.appendChild(el("mark", null, text.slice(start, end)));
      at = end;
    }
    wrap.appendChild(document.createTextNode(text.slice(at)));
    return wrap;
  }

  function metaLine(p) {
    const d = p.document;
    const parts = [d.doctype, d.rm && d.beteckning ? d.rm + ":" + d.beteckning : null, d.date,
      p.page ? "s. " + p.page : null].filter(Boolean);
    return parts.join(" · ");
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      const area = el("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Kopierat!";
    setTimeout(() => { button.textContent = "Kopiera citat"; }, 2000);
  }

  function renderTurn(data) {
    turnCount += 1;
    const node = template.content.firstElementChild.cloneNode(true);
    node.querySelector(".q").textContent = data.question;
    const answer = node.querySelector(".answer");
    const prefix = "t" + turnCount + "-p";
    if (data.answer && data.answer.found) {
      for (const s of data.answer.sentences) {
        answer.appendChild(el("span", "quote", "”" + s.text + "” "));
        const markers = [s.marker].concat((s.also || []).map((a) => a.marker));
        for (const marker of markers) {
          const link = el("a", "marker", "[" + marker + "]");
          link.href = "#" + prefix + marker;
          link.setAttribute("aria-label", "Källa " + marker);
          answer.appendChild(link);
        }
        answer.appendChild(document.createTextNode(" "));
      }
    } else {
      answer.appendChild(el("p", "none", data.answer ? data.answer.text : "Inga träffar."));
    }
    const list = node.querySelector(".passages");
    for (const p of data.passages) {
      const item = el("li", "passage");
      item.id = prefix + p.rank;
      item.tabIndex = -1;
      item.appendChild(el("h3", "title", p.document.title));
      item.appendChild(el("div", "meta", metaLine(p)));
      item.appendChild(highlighted(p.text, p.highlights || []));
      item.appendChild(el("div", "citation", p.citation));
      const tools = el("div", "tools");
      const button = el("button", "copy secondary", "Kopiera citat");
      button.type = "button";
      button.addEventListener("click", () => copy(p.citation, button));
      tools.appendChild(button);
      const link = el("a", "permalink", "Visa i sitt sammanhang");
      link.href = p.permalink;
      tools.appendChild(link);
      item.appendChild(tools);
      list.appendChild(item);
    }
    log.appendChild(node);
    node.scrollIntoView({ block: "start" });
  }

  function filters() {
    const f = {};
    if ($("f-doctype").value) f.doctype = $("f-doctype").value;
    if ($("f-rm").value) f.rm = $("f-rm").value;
    if ($("f-from").value) f.date_from = $("f-from").value;
    if ($("f-to").value) f.date_to = $("f-to").value;
    return f;
  }

  async function loadFacets() {
    try {
      const response = await fetch("/api/facets");
      if (!response.ok) return;
      const data = await response.json();
      for (const [id, values] of [["f-doctype", data.doctypes], ["f-rm", data.riksmoten]]) {
        const select = $(id);
        for (const value of values) {
          const option = el("option", null, value);
          option.value = value;
          select.appendChild(option);
        }
      }
    } catch (err) { /* filters stay at "Alla" */ }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    status.textContent = "Söker …";
    $("send").disabled = true;
    const body = { question: question, filters: filters() };
    if (conversationId) body.conversation_id = conversationId;
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const data = await response.json();
      if (!response.ok) {
        status.textContent = data.error ? data.error.message : "Något gick fel.";
        return;
      }
      conversationId = data.conversation_id || conversationId;
      status.textContent = "";
      input.value = "";
      renderTurn(data);
    } catch (err) {
      status.textContent = "Tjänsten svarar inte just nu.";
    } finally {
      $("send").disabled = false;
      input.focus();
    }
  });

  $("new").addEventListener("click", function () {
    conversationId = null;
    turnCount = 0;
    log.replaceChildren();
    status.textContent = "Ny konversation.";
    input.focus();
  });

  loadFacets();
})();
