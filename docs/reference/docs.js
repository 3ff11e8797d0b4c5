/*
 * The API reference: fetches /openapi.json from the same server and renders
 * it as plain HTML. No framework, no network access beyond this server.
 *
 * The one thing to know: every piece of text from the document reaches the
 * page through textContent or setAttribute, never through innerHTML, so the
 * document cannot inject markup. Descriptions support only `code`, **bold**
 * and blank-line paragraphs.
 */
"use strict";

(function () {
  const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

  /* el("p", {class: "x"}, child, "text", ...) */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  /* A tiny, safe subset of Markdown: paragraphs, `code` and **bold**. */
  function inline(text) {
    const frag = document.createDocumentFragment();
    const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) frag.append(text.slice(last, m.index));
      frag.append(m[1] !== undefined ? el("code", null, m[1]) : el("strong", null, m[2]));
      last = re.lastIndex;
    }
    if (last < text.length) frag.append(text.slice(last));
    return frag;
  }

  function markdown(text, cls) {
    const div = el("div", { class: cls || "md" });
    for (const para of String(text || "").split(/\n\s*\n/)) {
      if (para.trim()) div.append(el("p", null, inline(para.trim())));
    }
    return div;
  }

  function refName(ref) {
    return ref.split("/").pop();
  }

  function resolve(doc, obj) {
    let seen = 0;
    while (obj && obj.$ref && seen++ < 20) {
      const parts = obj.$ref.replace(/^#\//, "").split("/");
      let cur = doc;
      for (const p of parts) cur = cur ? cur[p.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined;
      obj = cur;
    }
    return obj || {};
  }

  function schemaLink(ref) {
    const name = refName(ref);
    return el("a", { href: "#schema-" + name }, name);
  }

  /* A short description of a schema's type, as a node. */
  function typeNode(s) {
    const span = el("span", { class: "type" });
    if (!s) return span;
    if (s.$ref) {
      span.append(schemaLink(s.$ref));
      return span;
    }
    if ("const" in s) {
      span.append("= " + JSON.stringify(s.const));
      return span;
    }
    let t = Array.isArray(s.type) ? s.type.join(" | ") : s.type || "";
    if (t === "array" || (Array.isArray(s.type) && s.type.includes("array"))) {
      span.append(t.replace("array", "array of "));
      span.append(typeNode(s.items || {}));
    } else if (s.oneOf || s.anyOf) {
      span.append((s.oneOf ? "one of " : "any of ") + (s.oneOf || s.anyOf).length + " forms");
    } else {
      span.append(t || "any");
    }
    const facts = [];
    if (s.format) facts.push(s.format);
    if (s.enum) facts.push("one of " + s.enum.map((v) => JSON.stringify(v)).join(", "));
    if (s.pattern) facts.push("pattern " + s.pattern);
    if (s.minimum !== undefined) facts.push("≥ " + s.minimum);
    if (s.maximum !== undefined) facts.push("≤ " + s.maximum);
    if (s.minLength !== undefined) facts.push("length ≥ " + s.minLength);
    if (s.maxLength !== undefined) facts.push("length ≤ " + s.maxLength);
    if (s.maxItems !== undefined) facts.push("at most " + s.maxItems + " items");
    if (s.default !== undefined) facts.push("default " + JSON.stringify(s.default));
    if (facts.length) span.append(" (" + facts.join("; ") + ")");
    return span;
  }

  /* Properties of an object schema as a nested list; refs expand once. */
  function schemaTree(doc, s, depth, seen) {
    const box = el("div", { class: "schema" });
    if (s && s.$ref) {
      const name = refName(s.$ref);
      if (seen.has(name) || depth > 3) {
        box.append(el("div", { class: "field" }, "see ", schemaLink(s.$ref)));
        return box;
      }
      seen = new Set(seen).add(name);
      s = resolve(doc, s);
    }
    if (!s) return box;
    if (s.description && depth === 0) box.append(markdown(s.description));
    if (s.oneOf || s.anyOf) {
      (s.oneOf || s.anyOf).forEach((alt, i) => {
        box.append(el("div", { class: "field" }, "form " + (i + 1) + ":"));
        box.append(schemaTree(doc, alt, depth + 1, seen));
      });
    }
    const props = s.properties || {};
    const required = new Set(s.required || []);
    for (const [name, p] of Object.entries(props)) {
      const row = el("div", { class: "field" },
        el("span", { class: "name" }, name), " ", typeNode(p),
        required.has(name) ? el("span", { class: "req" }, " required") : null);
      box.append(row);
      const rp = p.$ref ? resolve(doc, p) : p;
      if (p.description) row.append(" — ", inline(p.description));
      else if (p.$ref && rp.description && depth > 0) row.append(" — ", inline(rp.description));
      const inner = rp.type === "array" || (Array.isArray(rp.type) && rp.type.includes("array")) ? rp.items : p;
      const target = inner && inner.$ref ? resolve(doc, inner) : inner;
      if (target && target.properties && depth < 3 && !(inner.$ref && seen.has(refName(inner.$ref)))) {
        box.append(schemaTree(doc, inner, depth + 1, seen));
      }
    }
    if (s.additionalProperties === false && Object.keys(props).length) {
      box.append(el("div", { class: "field type" }, "no other members (unknown members are a 422 problem)"));
    }
    return box;
  }

  function authNode(doc, op) {
    const sec = op.security !== undefined ? op.security : doc.security || [];
    if (!sec.length) return el("p", { class: "auth" }, "Public: no credential needed.");
    const alts = sec.map((req) =>
      Object.entries(req).map(([name, scopes]) =>
        name + (scopes.length ? " with permission " + scopes.join(", ") : "")).join(" and "));
    return el("p", { class: "auth" }, "Credential: " + alts.join(", or "));
  }

  function paramsNode(doc, params) {
    if (!params.length) return null;
    const body = el("tbody");
    for (const raw of params) {
      const p = resolve(doc, raw);
      body.append(el("tr", null,
        el("td", null, el("code", null, p.name), p.required ? el("span", { class: "req" }, " required") : null),
        el("td", null, p.in),
        el("td", null, typeNode(p.schema)),
        el("td", null, p.description ? inline(p.description) : "")));
    }
    return el("div", null, el("h4", null, "Parameters"),
      el("table", null, el("thead", null, el("tr", null, el("th", null, "name"), el("th", null, "in"),
        el("th", null, "type"), el("th", null, "description"))), body));
  }

  function bodyNode(doc, rb) {
    if (!rb) return null;
    rb = resolve(doc, rb);
    const div = el("div", null, el("h4", null, "Request body" + (rb.required ? " (required)" : "")));
    if (rb.description) div.append(markdown(rb.description));
    for (const [type, media] of Object.entries(rb.content || {})) {
      div.append(el("div", null, el("code", null, type), " ", typeNode(media.schema)));
      div.append(schemaTree(doc, media.schema, 0, new Set()));
    }
    return div;
  }

  function responsesNode(doc, responses) {
    const body = el("tbody");
    for (const [status, raw] of Object.entries(responses || {})) {
      const r = resolve(doc, raw);
      const types = el("td");
      for (const [type, media] of Object.entries(r.content || {})) {
        types.append(el("div", null, el("code", null, type), " ", typeNode(media.schema)));
      }
      const headers = Object.keys(r.headers || {});
      body.append(el("tr", { class: "response", "data-status": status },
        el("td", null, el("code", null, status)),
        el("td", null, inline(r.description || "")),
        types,
        el("td", null, headers.join(", "))));
    }
    return el("div", null, el("h4", null, "Responses"),
      el("table", null, el("thead", null, el("tr", null, el("th", null, "status"),
        el("th", null, "meaning"), el("th", null, "body"), el("th", null, "headers"))), body));
  }

  function operationNode(doc, path, method, pathItem, op) {
    const id = "op-" + (op.operationId || method + path.replace(/[^A-Za-z0-9]+/g, "-"));
    const sec = el("section", { class: "op", id: id, "data-method": method.toUpperCase(), "data-path": path },
      el("h3", null, el("span", { class: "method " + method }, method.toUpperCase()),
        el("span", { class: "path" }, path),
        el("span", { class: "summary" }, op.summary || "")),
      authNode(doc, op));
    if (op.description) sec.append(markdown(op.description));
    const params = [...(pathItem.parameters || []), ...(op.parameters || [])];
    [paramsNode(doc, params), bodyNode(doc, op.requestBody), responsesNode(doc, op.responses)]
      .forEach((n) => n && sec.append(n));
    return { node: sec, id: id };
  }

  function render(doc) {
    const main = document.getElementById("reference");
    const toc = document.getElementById("toc");
    main.replaceChildren();
    toc.replaceChildren(el("strong", null, doc.info.title + " " + doc.info.version));
    main.append(el("h1", null, doc.info.title + " API reference"),
      el("p", null, "OpenAPI " + doc.openapi + ", version " + doc.info.version + ". Machine-readable: ",
        el("a", { href: "/openapi.json" }, "/openapi.json"), "."));
    if (doc.info.summary) main.append(el("p", null, inline(doc.info.summary)));
    main.append(markdown(doc.info.description));

    const auth = el("section", { id: "authentication" }, el("h2", null, "Authentication"));
    for (const [name, s] of Object.entries((doc.components || {}).securitySchemes || {})) {
      auth.append(el("h3", null, name), el("p", { class: "type" },
        s.type + (s.scheme ? " " + s.scheme : "") + (s.bearerFormat ? " (" + s.bearerFormat + ")" : "")),
        markdown(s.description));
    }
    main.append(auth);

    const tags = (doc.tags || []).map((t) => t.name);
    const byTag = new Map(tags.map((t) => [t, []]));
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        if (!item[method]) continue;
        const tag = (item[method].tags || ["other"])[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push([path, method, item, item[method]]);
      }
    }
    for (const [tag, ops] of byTag) {
      if (!ops.length) continue;
      const info = (doc.tags || []).find((t) => t.name === tag) || {};
      const section = el("section", { class: "tag", id: "tag-" + tag }, el("h2", null, tag));
      if (info.description) section.append(markdown(info.description));
      toc.append(el("h2", null, tag));
      for (const [path, method, item, op] of ops) {
        const { node, id } = operationNode(doc, path, method, item, op);
        section.append(node);
        toc.append(el("a", { href: "#" + id }, method.toUpperCase() + " " + path));
      }
      main.append(section);
    }

    const schemas = el("section", { id: "schemas" }, el("h2", null, "Schemas"));
    toc.append(el("h2", null, "more"), el("a", { href: "#schemas" }, "Schemas"),
      el("a", { href: "#problem-types" }, "Problem types"));
    for (const [name, s] of Object.entries((doc.components || {}).schemas || {})) {
      schemas.append(el("h3", { id: "schema-" + name }, name), el("div", null, typeNode(s)),
        schemaTree(doc, s, 0, new Set([name])));
    }
    main.append(schemas);

    const slugs = (((doc.components || {}).schemas || {}).ProblemSlug || {}).enum || [];
    const list = el("ul");
    for (const slug of slugs) {
      list.append(el("li", null, el("a", { class: "problem", href: "/problems/" + encodeURIComponent(slug) },
        "/problems/" + slug)));
    }
    main.append(el("section", { id: "problem-types" }, el("h2", null, "Problem types"),
      el("p", null, "Every error is an RFC 9457 problem whose ", el("code", null, "type"),
        " is one of these pages (", el("a", { href: "/problems" }, "all on one page"), ")."), list));
    document.body.setAttribute("data-rendered", "true");
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  function fail(err) {
    const status = document.getElementById("status");
    status.className = "error";
    status.textContent = "Could not load /openapi.json: " + err;
  }

  fetch("/openapi.json", { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
    .then(render)
    .catch(fail);
})();
