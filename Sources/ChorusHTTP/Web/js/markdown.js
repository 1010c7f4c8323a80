// Markdown to DOM, for text that is never trusted (a model's answer, a stored message).
//
// The parser builds elements with createElement and puts every piece of text in a Text node:
// HTML in the source stays visible text, and only http:, https: and mailto: links become links.
// MarkdownView renders a growing answer incrementally: finished blocks are rendered once, and
// each frame only the last, still-growing block is rendered again (or just has text appended).

import { h, clear, copyButton } from './dom.js';

const FENCE = /^( {0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/;
const ATX = /^ {0,3}(#{1,6})(?=[ \t]|$)[ \t]*(.*?)(?:[ \t]+#+)?[ \t]*$/;
const HR = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}>/;
const LIST = /^( {0,3})([-*+]|(\d{1,9})([.)]))(?:([ \t]+)(.*))?$/;
const BULLET_START = /^ {0,3}[-*+][ \t]+\S/;
const ORDERED_START = /^ {0,3}1[.)][ \t]+\S/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const DELIM_ROW = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
const PUNCT = /[!-/:-@[-`{-~]/;
const WORDCHAR = /[\p{L}\p{N}]/u;
const SPACE = /\s/;

const isBlank = (line) => !/\S/.test(line);
const indentOf = (line) => {
  let n = 0;
  for (const c of line) {
    if (c === ' ') n++;
    else if (c === '\t') n += 4 - (n % 4);
    else break;
  }
  return n;
};
/** The line without its first `n` columns of indentation. */
function unindent(line, n) {
  let col = 0, i = 0;
  while (i < line.length && col < n) {
    if (line[i] === ' ') col++;
    else if (line[i] === '\t') col += 4 - (col % 4);
    else break;
    i++;
  }
  return (col > n ? ' '.repeat(col - n) : '') + line.slice(i);
}

// ------------------------------------------------------------------------------------------
// Links

/** The URL if it is http:, https: or mailto:, else null. */
export function safeHref(raw) {
  const url = String(raw).trim();
  if (!/^(https?:\/\/|mailto:)/i.test(url) || /[\s\u0000-\u001f]/.test(url)) return null;
  try {
    const parsed = new URL(url);
    return ['http:', 'https:', 'mailto:'].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

function link(href, children) {
  const a = h('a', { href, target: '_blank', rel: 'noopener noreferrer' });
  a.append(...children);
  return a;
}

// ------------------------------------------------------------------------------------------
// Inline

// Where an inline construct may start; text between these is copied as it is.
const INLINE_SPECIAL = /[\\\n`*_~![<]|https?:\/\//gi;

/** Renders inline Markdown `src` into `parent` as DOM nodes. */
export function renderInline(src, parent, inLink = false) {
  const s = src;
  const n = s.length;
  const memo = new Map(); // "no closer from here on" positions, keeps scans linear
  let buf = '';
  const flush = () => {
    if (buf) parent.append(document.createTextNode(buf));
    buf = '';
  };
  let i = 0;
  while (i < n) {
    INLINE_SPECIAL.lastIndex = i;
    const m = INLINE_SPECIAL.exec(s);
    if (!m) { buf += s.slice(i); break; }
    if (m.index > i) { buf += s.slice(i, m.index); i = m.index; }
    const c = s[i];
    if (c === '\\') {
      const d = s[i + 1];
      if (d === '\n') { buf = buf.replace(/[ \t]+$/, ''); flush(); parent.append(h('br')); i += 2; continue; }
      if (d !== undefined && PUNCT.test(d)) { buf += d; i += 2; continue; }
      buf += c; i++; continue;
    }
    if (c === '\n') {
      // Chat text: every line break is kept.
      buf = buf.replace(/[ \t]+$/, '');
      flush();
      parent.append(h('br'));
      i++;
      while (s[i] === ' ' || s[i] === '\t') i++;
      continue;
    }
    if (c === '`') {
      let j = i;
      while (s[j] === '`') j++;
      const close = findBackticks(s, j, j - i, memo);
      if (close >= 0) {
        let code = s.slice(j, close).replace(/\n/g, ' ');
        if (code.length > 2 && code[0] === ' ' && code[code.length - 1] === ' ' && /\S/.test(code)) code = code.slice(1, -1);
        flush();
        parent.append(h('code', { text: code }));
        i = close + (j - i);
      } else {
        buf += s.slice(i, j);
        i = j;
      }
      continue;
    }
    if (c === '*' || c === '_' || c === '~') {
      let j = i;
      while (s[j] === c) j++;
      const found = emphasis(s, i, j, c, memo);
      if (found) {
        flush();
        let el = h(found.tags[0]);
        const outer = el;
        for (const tag of found.tags.slice(1)) { const inner = h(tag); el.append(inner); el = inner; }
        renderInline(s.slice(found.start, found.end), el, inLink);
        parent.append(outer);
        i = found.next;
      } else {
        buf += s.slice(i, j);
        i = j;
      }
      continue;
    }
    if ((c === '[' || (c === '!' && s[i + 1] === '[')) && !inLink) {
      const image = c === '!';
      const found = parseLink(s, image ? i + 1 : i, memo);
      if (found) {
        flush();
        const label = s.slice(found.textStart, found.textEnd);
        const href = safeHref(found.url);
        const holder = h('span');
        if (image) holder.append(label || found.url);
        else renderInline(label, holder, true);
        const kids = [...holder.childNodes];
        if (href) parent.append(link(href, image ? ['🖼 ', ...kids] : kids));
        else parent.append(...kids);
        i = found.end;
        continue;
      }
      buf += c;
      i++;
      continue;
    }
    if (c === '<') {
      const auto = /^<((?:https?|mailto):[^\s<>]+)>/i.exec(s.slice(i, i + 2048)) ||
        /^<([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>/.exec(s.slice(i, i + 512));
      if (auto && !inLink) {
        const url = auto[1].includes(':') ? auto[1] : 'mailto:' + auto[1];
        const href = safeHref(url);
        if (href) {
          flush();
          parent.append(link(href, [auto[1]]));
          i += auto[0].length;
          continue;
        }
      }
      buf += c;
      i++;
      continue;
    }
    if (c === 'h' || c === 'H') {
      // A bare URL, at the start of a word.
      const before = i > 0 ? s[i - 1] : ' ';
      const bare = !inLink && !WORDCHAR.test(before) && /^https?:\/\/[^\s<]+/i.exec(s.slice(i, i + 2048));
      if (bare) {
        let url = bare[0];
        while (/[.,:;!?'"*_~]$/.test(url)) url = url.slice(0, -1);
        while (url.endsWith(')') && (url.match(/\(/g) || []).length < (url.match(/\)/g) || []).length) url = url.slice(0, -1);
        const href = safeHref(url);
        if (href && url.length > 8) {
          flush();
          parent.append(link(href, [url]));
          i += url.length;
          continue;
        }
      }
      buf += s.slice(i, i + 4);
      i += 4;
      continue;
    }
    buf += c;
    i++;
  }
  flush();
}

function findBackticks(s, from, len, memo) {
  const key = '`' + len;
  if (memo.has(key) && memo.get(key) <= from) return -1;
  let k = from;
  for (;;) {
    const at = s.indexOf('`', k);
    if (at < 0) break;
    let e = at;
    while (s[e] === '`') e++;
    if (e - at === len) return at;
    k = e;
  }
  memo.set(key, Math.min(from, memo.get(key) ?? Infinity));
  return -1;
}

/** The first valid closing run of exactly `want` × `c` after `from`, or -1. */
function findCloser(s, from, c, want, memo) {
  const key = c + want;
  if (memo.has(key) && memo.get(key) <= from) return -1;
  let k = from;
  while (k < s.length) {
    const ch = s[k];
    if (ch === '\\') { k += 2; continue; }
    if (ch === '`') {
      let e = k;
      while (s[e] === '`') e++;
      const close = findBackticks(s, e, e - k, memo);
      k = close >= 0 ? close + (e - k) : e;
      continue;
    }
    if (ch === c) {
      let e = k;
      while (s[e] === c) e++;
      const before = s[k - 1];
      if (e - k === want && k > from && !SPACE.test(before) && (c !== '_' || !WORDCHAR.test(s[e] || ' '))) return k;
      k = e;
      continue;
    }
    k++;
  }
  memo.set(key, Math.min(from, memo.get(key) ?? Infinity));
  return -1;
}

function emphasis(s, i, j, c, memo) {
  const run = j - i;
  const next = s[j];
  if (next === undefined || SPACE.test(next)) return null;
  if (c === '_' && i > 0 && WORDCHAR.test(s[i - 1])) return null;
  let options;
  if (c === '~') options = run === 2 ? [[2, ['del']]] : [];
  else if (run === 1) options = [[1, ['em']]];
  else if (run === 2) options = [[2, ['strong']]];
  else if (run === 3) options = [[3, ['strong', 'em']]];
  else options = [];
  for (const [want, tags] of options) {
    const close = findCloser(s, j, c, want, memo);
    if (close >= 0) return { tags, start: j, end: close, next: close + want };
  }
  return null;
}

/** `[text](url "title")` starting at s[i] === '['. */
function parseLink(s, i, memo) {
  if (memo.has('[') && memo.get('[') <= i) return null;
  let depth = 0;
  let k = i;
  let close = -1;
  const limit = Math.min(s.length, i + 4000);
  while (k < limit) {
    const ch = s[k];
    if (ch === '\\') { k += 2; continue; }
    if (ch === '`') {
      let e = k;
      while (s[e] === '`') e++;
      const end = findBackticks(s, e, e - k, memo);
      k = end >= 0 ? end + (e - k) : e;
      continue;
    }
    if (ch === '[') depth++;
    else if (ch === ']') {
      depth--;
      if (depth === 0) { close = k; break; }
    }
    k++;
  }
  if (close < 0) {
    if (limit === s.length) memo.set('[', Math.min(i, memo.get('[') ?? Infinity));
    return null;
  }
  if (s[close + 1] !== '(') return null;
  const m = /^\(\s*(?:<([^<>\n]*)>|((?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))*))(?:\s+("[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/.exec(s.slice(close + 1, close + 2049));
  if (!m) return null;
  return { textStart: i + 1, textEnd: close, url: (m[1] ?? m[2] ?? '').replace(/\\(.)/g, '$1'), end: close + 1 + m[0].length };
}

// ------------------------------------------------------------------------------------------
// Blocks

/** Renders Markdown `src` as block elements appended to `parent`. */
export function renderBlocks(src, parent, done = true) {
  parseLines(src.split('\n'), parent, done);
  return parent;
}

function startsBlock(line, next) {
  return FENCE.test(line) || ATX.test(line) || HR.test(line) || QUOTE.test(line) ||
    BULLET_START.test(line) || ORDERED_START.test(line) || isTableStart(line, next);
}

function isTableStart(line, next) {
  return next !== undefined && line.includes('|') && DELIM_ROW.test(next) &&
    splitRow(line).length === splitRow(next).length;
}

function parseLines(lines, parent, done) {
  const n = lines.length;
  let i = 0;
  while (i < n) {
    const line = lines[i];
    if (isBlank(line)) { i++; continue; }
    if (indentOf(line) >= 4) {
      const buf = [];
      while (i < n && (isBlank(lines[i]) || indentOf(lines[i]) >= 4)) buf.push(unindent(lines[i++], 4));
      while (buf.length && isBlank(buf[buf.length - 1])) buf.pop();
      parent.append(codeBlock('', buf.join('\n'), done));
      continue;
    }
    let m = FENCE.exec(line);
    if (m) {
      const indent = m[1].length;
      const fence = m[2];
      const buf = [];
      let closed = false;
      i++;
      while (i < n) {
        const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(lines[i]);
        if (close && close[1][0] === fence[0] && close[1].length >= fence.length) { closed = true; i++; break; }
        buf.push(unindent(lines[i], indent));
        i++;
      }
      parent.append(codeBlock(m[3], buf.join('\n'), done || closed));
      continue;
    }
    m = ATX.exec(line);
    if (m) {
      const heading = h('h' + m[1].length);
      renderInline(m[2], heading);
      parent.append(heading);
      i++;
      continue;
    }
    if (HR.test(line)) { parent.append(h('hr')); i++; continue; }
    if (QUOTE.test(line)) {
      const inner = [];
      let lazyOk = false;
      while (i < n) {
        const l = lines[i];
        if (QUOTE.test(l)) {
          const stripped = l.replace(/^ {0,3}> ?/, '');
          inner.push(stripped);
          lazyOk = !isBlank(stripped) && !FENCE.test(stripped);
        } else if (lazyOk && !isBlank(l) && !startsBlock(l, lines[i + 1])) {
          inner.push(l);
        } else break;
        i++;
      }
      const quote = h('blockquote');
      parseLines(inner, quote, done);
      parent.append(quote);
      continue;
    }
    if (LIST.test(line)) {
      i = parseList(lines, i, parent, done);
      continue;
    }
    if (isTableStart(line, lines[i + 1])) {
      i = parseTable(lines, i, parent);
      continue;
    }
    // A paragraph (or a setext heading).
    const buf = [line.replace(/^[ \t]+/, '')];
    i++;
    let heading = 0;
    while (i < n) {
      const l = lines[i];
      if (isBlank(l)) break;
      const setext = SETEXT.exec(l);
      if (setext) { heading = setext[1][0] === '=' ? 1 : 2; i++; break; }
      if (startsBlock(l, lines[i + 1])) break;
      buf.push(l.replace(/^[ \t]+/, ''));
      i++;
    }
    const el = h(heading ? 'h' + heading : 'p');
    renderInline(heading ? buf.join('\n').trim() : buf.join('\n'), el);
    parent.append(el);
  }
}

function parseList(lines, i, parent, done) {
  const first = LIST.exec(lines[i]);
  const ordered = first[3] !== undefined;
  const delimiter = ordered ? first[4] : first[2];
  const list = h(ordered ? 'ol' : 'ul');
  if (ordered && Number(first[3]) !== 1) list.setAttribute('start', String(Number(first[3])));
  const items = [];
  let loose = false;
  while (i < lines.length) {
    const m = LIST.exec(lines[i]);
    if (!m || (m[3] !== undefined) !== ordered || (ordered ? m[4] : m[2]) !== delimiter || HR.test(lines[i])) break;
    const spaces = m[5] ? indentOf(m[5]) : 1;
    const contentIndent = m[1].length + m[2].length + (spaces > 4 ? 1 : spaces);
    const body = [m[6] !== undefined ? (spaces > 4 ? ' '.repeat(spaces - 1) : '') + m[6] : ''];
    i++;
    let sawBlank = false;
    while (i < lines.length) {
      const l = lines[i];
      if (isBlank(l)) { body.push(''); sawBlank = true; i++; continue; }
      if (indentOf(l) >= contentIndent) { body.push(unindent(l, contentIndent)); sawBlank = false; i++; continue; }
      if (sawBlank || LIST.test(l) || startsBlock(l, lines[i + 1])) break;
      body.push(l.replace(/^[ \t]+/, ''));  // a lazy continuation line
      i++;
    }
    let trailing = 0;
    while (body.length > 1 && body[body.length - 1] === '') { body.pop(); trailing++; }
    if (body.includes('')) loose = true;
    items.push(body);
    const next = i < lines.length && LIST.exec(lines[i]);
    if (trailing && next && (next[3] !== undefined) === ordered && (ordered ? next[4] : next[2]) === delimiter) loose = true;
  }
  for (const body of items) {
    const li = h('li');
    const task = /^\[([ xX])\][ \t]+/.exec(body[0]);
    if (task) {
      body[0] = body[0].slice(task[0].length);
      li.className = 'task';
      li.append(h('input', { type: 'checkbox', disabled: true, checked: task[1] !== ' ', 'aria-label': task[1] !== ' ' ? 'done' : 'not done' }), ' ');
    }
    parseLines(body, li, done);
    // Tight items hold their text directly; loose ones keep later paragraphs apart.
    for (const p of [...li.children]) {
      if (p.tagName === 'P' && (!loose || p === li.firstElementChild)) p.replaceWith(...p.childNodes);
    }
    list.append(li);
  }
  parent.append(list);
  return i;
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells = [];
  let cur = '';
  let code = 0;
  for (let k = 0; k < s.length; k++) {
    const ch = s[k];
    if (ch === '\\' && s[k + 1] === '|') { cur += '|'; k++; continue; }
    if (ch === '`') code ^= 1;
    if (ch === '|' && !code) { cells.push(cur.trim()); cur = ''; continue; }
    cur += ch;
  }
  cells.push(cur.trim());
  return cells;
}

function parseTable(lines, i, parent) {
  const head = splitRow(lines[i]);
  const aligns = splitRow(lines[i + 1]).map((d) =>
    d.startsWith(':') && d.endsWith(':') ? 'center' : d.endsWith(':') ? 'right' : d.startsWith(':') ? 'left' : '');
  const cell = (tag, text, k) => {
    const el = h(tag, { class: aligns[k] ? 'align-' + aligns[k] : null });
    renderInline(text ?? '', el);
    return el;
  };
  const thead = h('thead', null, h('tr', null, head.map((t, k) => cell('th', t, k))));
  const tbody = h('tbody');
  i += 2;
  while (i < lines.length && !isBlank(lines[i]) && lines[i].includes('|')) {
    const cells = splitRow(lines[i]);
    tbody.append(h('tr', null, head.map((_, k) => cell('td', cells[k], k))));
    i++;
  }
  parent.append(h('div', { class: 'table-wrap' }, h('table', null, thead, tbody.firstChild ? tbody : null)));
  return i;
}

export function codeBlock(lang, code, done = true) {
  const language = (lang || '').replace(/[^\w+#.-]/g, '').slice(0, 30).toLowerCase();
  const codeEl = h('code', { class: language ? 'language-' + language : null, text: code });
  if (done) highlight(codeEl, language);
  return h('div', { class: 'code-block', dataset: { lang: language || 'text' } },
    h('div', { class: 'code-head' },
      h('span', { class: 'code-lang', text: language || 'text' }),
      copyButton(() => codeEl.textContent, 'Copy code', true)),
    h('pre', null, codeEl));
}

// ------------------------------------------------------------------------------------------
// A small highlighter: comments, strings, numbers and keywords, as spans of text.

const KEYWORDS = new Set(('as async await break case catch class const continue def default defer del do elif else enum ' +
  'except export extends false final finally fn for from func function go guard if impl import in interface is lambda let ' +
  'match mod mut new nil none None not null or package pass private protected pub public raise return self Self static ' +
  'struct super switch this throw throws true True False try type typeof use var void where while with yield and ' +
  'SELECT FROM WHERE INSERT INTO VALUES UPDATE SET DELETE CREATE TABLE JOIN ON GROUP BY ORDER LIMIT AND OR NOT NULL AS ' +
  'echo then fi done esac local').split(' '));
const HASH_COMMENTS = /^(py|python|sh|bash|shell|zsh|console|rb|ruby|yaml|yml|toml|ini|r|perl|pl|make|makefile|dockerfile|conf|nginx|ps1|powershell)$/;

function highlight(codeEl, lang) {
  const text = codeEl.textContent;
  if (!lang || /^(text|plain|plaintext|txt|md|markdown)$/.test(lang) || text.length > 200000) return;
  const comment = HASH_COMMENTS.test(lang) ? '#[^\\n]*' : /^(sql|lua|haskell|hs)$/.test(lang) ? '--[^\\n]*' : '\\/\\*[\\s\\S]*?\\*\\/|\\/\\/[^\\n]*';
  const re = new RegExp(`(${comment})|("(?:[^"\\\\\\n]|\\\\.)*"|'(?:[^'\\\\\\n]|\\\\.)*'|\`(?:[^\`\\\\]|\\\\.)*\`)|(\\b(?:0x[\\da-fA-F]+|\\d[\\d_]*(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)\\b)|([A-Za-z_$][\\w$]*)`, 'g');
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(re)) {
    const kind = m[1] ? 'c' : m[2] ? 's' : m[3] ? 'n' : KEYWORDS.has(m[4]) ? 'k' : null;
    if (!kind) continue;
    if (m.index > last) frag.append(text.slice(last, m.index));
    frag.append(h('span', { class: 'tok-' + kind, text: m[0] }));
    last = m.index + m[0].length;
  }
  if (last === 0) return;
  frag.append(text.slice(last));
  clear(codeEl).append(frag);
}

// ------------------------------------------------------------------------------------------
// Incremental rendering of a growing text

// A delta with none of these cannot change how the text before it renders.
const DELTA_SPECIAL = /[\n`*_~[\]()<>!\\|#=+.:-]/;
const APPENDABLE = new Set(['P', 'LI', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6']);

export class MarkdownView {
  constructor(el) {
    this.el = el;
    this.reset();
  }

  reset() {
    clear(this.el);
    this.text = '';
    this.stable = 0;        // text[0..stable) is rendered for good
    this.scan = 0;          // next line start the block scanner looks at
    this.fence = null;      // the open fence the scanner is in
    this.prevBlank = true;
    this.tailNodes = [];
    this.tailText = null;
    this.tailCode = null;   // {text: Text node, shown: string} while the tail is an open fence
    this.finished = false;
  }

  /** Replaces the whole text (history, or a final text that differs). */
  setText(text) {
    this.reset();
    this.append(text);
    this.finish();
  }

  append(delta) {
    if (delta) this.text += delta.replace(/\r/g, '');
  }

  /** Brings the DOM up to date with the text; called at most once per frame. */
  render() {
    if (this.finished) return;
    this.advance();
    this.renderTail(this.text.slice(this.stable));
  }

  /** The text is complete: render what is left as final blocks. */
  finish() {
    if (this.finished) return;
    this.advance();
    if (this.stable < this.text.length) this.commit(this.text.length);
    else this.removeTail();
    this.finished = true;
  }

  advance() {
    const t = this.text;
    let boundary = -1;
    for (;;) {
      const start = this.scan;
      const nl = t.indexOf('\n', start);
      if (nl < 0) {
        // The line is not complete, but its first character can already end a block.
        if (!this.fence && this.prevBlank && start < t.length && start > this.stable && !/[ \t]/.test(t[start])) boundary = start;
        break;
      }
      const line = t.slice(start, nl);
      if (this.fence) {
        const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
        if (close && close[1][0] === this.fence.ch && close[1].length >= this.fence.len) {
          if (this.fence.indent === 0) boundary = nl + 1;
          this.fence = null;
        }
        this.prevBlank = false;
      } else {
        const blank = isBlank(line);
        if (!blank) {
          if (this.prevBlank && start > this.stable && !/[ \t]/.test(line[0])) boundary = start;
          const f = FENCE.exec(line);
          if (f) {
            this.fence = { ch: f[2][0], len: f[2].length, indent: f[1].length, start };
            if (f[1].length === 0 && start > this.stable) boundary = start;
          }
        }
        this.prevBlank = blank;
      }
      this.scan = nl + 1;
    }
    if (boundary > this.stable) this.commit(boundary);
  }

  commit(end) {
    const frag = document.createDocumentFragment();
    renderBlocks(this.text.slice(this.stable, end), frag, true);
    this.removeTail();
    // A list that goes on after a blank line joins the list before it.
    const first = frag.firstChild;
    const prev = this.el.lastChild;
    if (first && prev && (first.tagName === 'UL' || first.tagName === 'OL') && first.tagName === prev.tagName) {
      const expected = Number(prev.getAttribute('start') || 1) + prev.children.length;
      if (first.tagName === 'UL' || Number(first.getAttribute('start') || 1) === expected) {
        prev.append(...first.childNodes);
        first.remove();
      }
    }
    this.el.append(frag);
    this.stable = end;
  }

  removeTail() {
    for (const node of this.tailNodes) node.remove();
    this.tailNodes = [];
    this.tailText = null;
    this.tailCode = null;
  }

  renderTail(tail) {
    if (tail === this.tailText) return;
    const previous = this.tailText;
    // An open fence at the start of the tail: only the code grows.
    const fence = this.fence;
    if (fence && fence.indent === 0 && fence.start === this.stable) {
      const nl = tail.indexOf('\n');
      let shown = tail.slice(nl + 1);
      shown = shown.replace(/(^|\n) {0,3}(`{1,}|~{1,})$/, '');  // a closing fence on its way
      if (this.tailCode && shown.startsWith(this.tailCode.shown)) {
        this.tailCode.text.appendData(shown.slice(this.tailCode.shown.length));
      } else {
        const m = FENCE.exec(tail.slice(0, nl));
        const block = codeBlock(m ? m[3] : '', '', false);
        const text = document.createTextNode(shown);
        block.querySelector('code').append(text);
        block.classList.add('streaming');
        this.replaceTail([block]);
        this.tailCode = { text, shown };
      }
      this.tailCode.shown = shown;
      this.tailText = tail;
      return;
    }
    this.tailCode = null;
    // Plain words added to a paragraph: append them to its last text node.
    if (previous !== null && tail.length > previous.length && tail.startsWith(previous)) {
      const delta = tail.slice(previous.length);
      const lastLine = previous.slice(previous.lastIndexOf('\n') + 1);
      if (!DELTA_SPECIAL.test(delta) && lastLine.length >= 8 && this.tailNodes.length) {
        let node = this.tailNodes[this.tailNodes.length - 1];
        while (node.lastChild) node = node.lastChild;
        const parent = node.parentNode;
        if (node.nodeType === 3 && parent && (APPENDABLE.has(parent.tagName) || (parent.tagName === 'CODE' && parent.parentNode.tagName === 'PRE')) &&
            node.data.endsWith(previous.slice(-3))) {
          node.appendData(delta);
          this.tailText = tail;
          return;
        }
      }
    }
    const frag = document.createDocumentFragment();
    renderBlocks(tail, frag, false);
    this.replaceTail([...frag.childNodes]);
    this.tailText = tail;
  }

  replaceTail(nodes) {
    for (const node of this.tailNodes) node.remove();
    this.el.append(...nodes);
    this.tailNodes = nodes;
  }
}
