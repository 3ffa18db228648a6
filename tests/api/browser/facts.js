// What a page tells about its layout, read by the browser tests through Runtime.evaluate.
(() => {
  const root = document.documentElement;
  const style = (element) => getComputedStyle(element);
  const left = (element) => {
    if (!element) return null;
    return element.getBoundingClientRect().left + parseFloat(style(element).paddingLeft);
  };
  const scrolls = (element) => {
    for (let e = element.parentElement; e; e = e.parentElement) {
      if (["auto", "scroll", "hidden"].includes(style(e).overflowX) && e !== root && e !== document.body) {
        return true;
      }
    }
    return false;
  };
  const label = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (typeof e.className === "string" && e.className ? "." + e.className.trim().split(/\s+/).join(".") : "");

  // Boxes that reach past the window, and boxes whose own text spills out of them, outside any
  // box that scrolls on its own.
  const tooWide = [...document.body.querySelectorAll("*")]
    .filter((e) => !scrolls(e) && (e.getBoundingClientRect().right > root.clientWidth + 0.5 ||
      (style(e).overflowX === "visible" && e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0)))
    .map(label)
    .slice(0, 12);

  const links = [...document.querySelectorAll("header nav a")];
  const current = links.find((a) => a.getAttribute("aria-current") === "page");
  const other = links.find((a) => a !== current);
  const looks = (a) => {
    const s = style(a);
    return [s.color, s.backgroundColor, s.fontWeight, s.borderBottomColor, s.borderBottomWidth,
      s.textDecorationLine].join("|");
  };

  // Every "prom-metrics-app" in the text, and on how many lines each is drawn.
  const lines = (range) => new Set([...range.getClientRects()].filter((r) => r.width > 0)
    .map((r) => Math.round(r.top))).size;
  const names = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let at = node.data.indexOf("prom-metrics-app"); at >= 0; at = node.data.indexOf("prom-metrics-app", at + 1)) {
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + "prom-metrics-app".length);
      names.push({ in: label(node.parentElement), lines: lines(range) });
    }
  }
  const brand = document.querySelector("header .brand");

  const cards = [...document.querySelectorAll(".cards [data-card]")].map((card) => {
    const value = card.querySelector(".value");
    return {
      id: card.getAttribute("data-card"),
      text: card.textContent.replace(/\s+/g, " ").trim(),
      tabular: !!value && style(value).fontVariantNumeric.includes("tabular-nums"),
    };
  });
  const colour = (id) => {
    const e = document.getElementById(id);
    return e ? style(e).color : null;
  };
  const chart = document.getElementById("chart");
  const main = document.querySelector("main");
  const mainWidth = main ? main.clientWidth - parseFloat(style(main).paddingLeft) - parseFloat(style(main).paddingRight) : 1;
  const buckets = document.getElementById("buckets");
  const folded = buckets ? buckets.closest("details") : null;
  const buttons = [...document.querySelectorAll("form button")];

  return {
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    height: root.scrollHeight,
    tooWide,
    nav: links.map((a) => ({ href: a.getAttribute("href"), text: a.textContent.trim(), current: a.getAttribute("aria-current") })),
    currentStyled: !!current && !!other && looks(current) !== looks(other),
    brand: brand ? brand.textContent.trim() : null,
    names,
    mainLeft: left(main),
    footerLeft: left(document.querySelector("footer")),
    cards,
    errorColours: { ink: style(document.body).color, "4xx": colour("errors-4xx"), "5xx": colour("errors-5xx") },
    bucketsFolded: !!folded && !folded.open,
    chartShare: chart ? chart.getBoundingClientRect().width / mainWidth : 0,
    buttonsStyled: buttons.length > 0 && buttons.every((b) => parseFloat(style(b).borderTopLeftRadius) > 0 &&
      style(b).backgroundColor !== "rgb(239, 239, 239)" && style(b).backgroundColor !== "rgba(0, 0, 0, 0)"),
  };
})()
