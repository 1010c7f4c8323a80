// The API reference at /docs: renders /openapi.json (OpenAPI 3.1) as operations by tag, each with
// its parameters, request body, responses and schemas. Built with DOM nodes only (dom.js) and
// served by Chorus itself under the chat page's CSP; descriptions go through the page's
// Markdown renderer, which never parses HTML.

import { h, append, clear } from './dom.js';
import { renderBlocks } from './markdown.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'options', 'head', 'trace'];

let doc = null;

/** The object a local `$ref` (`#/components/...`) points at. */
function resolve(ref) {
  return ref.replace(/^#\//, '').split('/').reduce((node, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

const anchor = (kind, name) => `${kind}-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;

function markdown(text, cls = 'md') {
  return text ? renderBlocks(String(text), h('div', { class: cls })) : null;
}

function refLink(ref) {
  const name = ref.split('/').pop();
  return ref.startsWith('#/components/schemas/') ? h('a', { class: 'ref', href: `#${anchor('schema', name)}` }, name) : h('code', null, name);
}

/** A one-line summary of a schema's type: `string`, `integer | null`, `array of Task`, `Task`. */
function typeLabel(schema) {
  if (!schema || typeof schema !== 'object') return h('span', { class: 'type' }, 'any');
  if (schema.$ref) return refLink(schema.$ref);
  // A string carrying JSON (an SSE event's `data:`): show what the JSON is.
  const embedded = schema.contentSchema ? schema : schema.else?.contentSchema ? schema.else : null;
  if (embedded) return h('span', { class: 'type' }, `string of ${embedded.contentMediaType || 'JSON'}: `, typeLabel(embedded.contentSchema), schema.if?.const !== undefined ? ` or ${JSON.stringify(schema.if.const)}` : '');
  if ('const' in schema) return h('span', { class: 'type' }, h('code', null, JSON.stringify(schema.const)));
  const alternatives = schema.oneOf || schema.anyOf;
  if (alternatives) return h('span', { class: 'type' }, joined(alternatives.map(typeLabel), ' | '));
  if (schema.allOf) return h('span', { class: 'type' }, joined(schema.allOf.map(typeLabel), ' & '));
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (!types.length) return h('span', { class: 'type' }, schema.properties ? 'object' : 'any');
  return h('span', { class: 'type' }, joined(types.map(type =>
    type === 'array' && schema.items ? h('span', null, 'array of ', typeLabel(schema.items)) : h('span', null, type)), ' | '));
}

function joined(nodes, separator) {
  return nodes.flatMap((node, i) => (i ? [separator, node] : [node]));
}

/** Constraints worth showing next to a type. */
function constraints(schema) {
  const notes = [];
  if (schema.enum) notes.push(`one of ${schema.enum.map(v => JSON.stringify(v)).join(', ')}`);
  for (const [key, label] of [['minimum', '≥'], ['maximum', '≤'], ['minLength', 'min length'], ['maxLength', 'max length'], ['minItems', 'min items'], ['pattern', 'pattern'], ['format', 'format']]) {
    if (schema[key] !== undefined) notes.push(`${label} ${schema[key]}`);
  }
  if (schema.default !== undefined) notes.push(`default ${JSON.stringify(schema.default)}`);
  if (schema.examples) notes.push(`e.g. ${schema.examples.map(v => JSON.stringify(v)).join(', ')}`);
  return notes.length ? h('span', { class: 'notes' }, notes.join(' · ')) : null;
}

/** The properties of an object schema as a table (nested objects inline, one level per row). */
function schemaView(schema, depth = 0) {
  if (!schema || typeof schema !== 'object') return null;
  // A body's named schema is shown in place too (one level), with the link to its definition.
  if (schema.$ref) {
    return h('div', { class: 'schema' }, h('p', { class: 'schema-ref' }, 'Schema: ', refLink(schema.$ref)),
      depth === 0 ? schemaView(resolve(schema.$ref), 1) : null);
  }
  const parts = [];
  if (schema.description && depth === 0) parts.push(markdown(schema.description));
  const properties = { ...schema.properties };
  const required = new Set(schema.required || []);
  for (const member of schema.allOf || []) {
    const target = member.$ref ? resolve(member.$ref) : member;
    Object.assign(properties, target?.properties);
    for (const name of target?.required || []) required.add(name);
  }
  const names = Object.keys(properties);
  if (names.length) {
    parts.push(h('table', { class: 'props' },
      h('tbody', null, names.map(name => {
        const prop = properties[name] || {};
        const nested = depth < 2 && !prop.$ref && (prop.properties || prop.items?.properties) ? schemaView(prop.properties ? prop : prop.items, depth + 1) : null;
        return h('tr', null,
          h('td', { class: 'name' }, h('code', null, name), required.has(name) ? h('span', { class: 'req', title: 'required' }, '*') : null),
          h('td', null, typeLabel(prop), ' ', constraints(prop), prop.description ? markdown(prop.description, 'md small') : null, nested));
      }))));
  } else if (depth === 0) {
    parts.push(h('p', null, typeLabel(schema), ' ', constraints(schema)));
  }
  if (schema.additionalProperties === true) parts.push(h('p', { class: 'notes' }, 'Other members are accepted.'));
  return h('div', { class: 'schema' }, parts);
}

function contentView(content) {
  return Object.entries(content || {}).map(([type, media]) => h('div', { class: 'media' },
    h('div', { class: 'media-type' }, h('code', null, type)),
    type.startsWith('text/event-stream') ? h('p', { class: 'notes' }, 'A stream of server-sent events; the schema describes each event.') : null,
    schemaView(media.schema)));
}

function securityView(operation) {
  const requirements = operation.security ?? doc.security ?? [];
  if (!requirements.length) return h('p', { class: 'security' }, 'No credential needed.');
  return h('p', { class: 'security' }, 'Credentials: ', joined(requirements.map(requirement =>
    h('span', null, joined(Object.keys(requirement).map(name => h('a', { href: `#${anchor('security', name)}` }, name)), ' + '))), ' or '));
}

function parametersView(pathItem, operation) {
  const params = [...(pathItem.parameters || []), ...(operation.parameters || [])].map(p => (p.$ref ? resolve(p.$ref) : p));
  if (!params.length) return null;
  return [h('h4', null, 'Parameters'), h('table', { class: 'props' }, h('tbody', null, params.map(p => h('tr', null,
    h('td', { class: 'name' }, h('code', null, p.name), p.required ? h('span', { class: 'req', title: 'required' }, '*') : null),
    h('td', null, h('span', { class: 'in' }, p.in), ' ', typeLabel(p.schema), ' ', constraints(p.schema || {}), markdown(p.description, 'md small'))))))];
}

function responsesView(responses) {
  return [h('h4', null, 'Responses'), Object.entries(responses || {}).map(([status, response]) => {
    const ref = response.$ref;
    const target = ref ? resolve(ref) : response;
    return h('div', { class: 'response' },
      h('div', { class: 'status-line' }, h('span', { class: `status s${status[0]}` }, status), ' ', target?.description || ''),
      Object.keys(target?.headers || {}).length ? h('p', { class: 'notes' }, 'Headers: ', Object.keys(target.headers).join(', ')) : null,
      contentView(target?.content));
  })];
}

function operationView(path, method, pathItem, operation) {
  const id = anchor('op', operation.operationId || `${method}-${path}`);
  return h('details', { class: 'op', id },
    h('summary', null, h('span', { class: `method m-${method}` }, method.toUpperCase()), h('code', { class: 'path' }, path), h('span', { class: 'summary' }, operation.summary || '')),
    h('div', { class: 'op-body' },
      markdown(operation.description),
      securityView(operation),
      parametersView(pathItem, operation),
      operation.requestBody ? [h('h4', null, 'Request body', operation.requestBody.required ? '' : ' (optional)'), contentView(operation.requestBody.content)] : null,
      responsesView(operation.responses)));
}

function render() {
  const main = document.getElementById('doc');
  const nav = document.getElementById('nav');
  clear(main);
  clear(nav);
  document.title = doc.info?.title || 'API';
  append(main, [h('h1', null, doc.info?.title || 'API', ' ', h('span', { class: 'version' }, `v${doc.info?.version ?? ''} · OpenAPI ${doc.openapi}`)), markdown(doc.info?.description)]);

  const byTag = new Map((doc.tags || []).map(tag => [tag.name, { tag, operations: [] }]));
  for (const [path, pathItem] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const operation = pathItem[method];
      if (!operation) continue;
      const tagName = operation.tags?.[0] || 'Other';
      if (!byTag.has(tagName)) byTag.set(tagName, { tag: { name: tagName }, operations: [] });
      byTag.get(tagName).operations.push({ path, method, pathItem, operation });
    }
  }
  for (const { tag, operations } of byTag.values()) {
    if (!operations.length) continue;
    const section = anchor('tag', tag.name);
    nav.append(h('div', { class: 'nav-group' }, h('a', { class: 'nav-tag', href: `#${section}` }, tag.name),
      operations.map(({ path, method, operation }) => h('a', { class: 'nav-op', href: `#${anchor('op', operation.operationId || `${method}-${path}`)}` },
        h('span', { class: `method m-${method}` }, method.toUpperCase()), ' ', path))));
    main.append(h('section', { id: section }, h('h2', null, tag.name), markdown(tag.description),
      operations.map(({ path, method, pathItem, operation }) => operationView(path, method, pathItem, operation))));
  }

  const schemes = doc.components?.securitySchemes || {};
  nav.append(h('div', { class: 'nav-group' }, h('a', { class: 'nav-tag', href: '#security' }, 'Credentials'), h('a', { class: 'nav-tag', href: '#schemas' }, 'Schemas')));
  main.append(h('section', { id: 'security' }, h('h2', null, 'Credentials'), Object.entries(schemes).map(([name, scheme]) =>
    h('div', { class: 'scheme', id: anchor('security', name) }, h('h3', null, name),
      h('p', { class: 'notes' }, scheme.type === 'http' ? `HTTP ${scheme.scheme}` : `${scheme.name} (${scheme.in})`), markdown(scheme.description)))));
  main.append(h('section', { id: 'schemas' }, h('h2', null, 'Schemas'), Object.entries(doc.components?.schemas || {}).map(([name, schema]) =>
    h('div', { class: 'schema-def', id: anchor('schema', name) }, h('h3', null, name), schemaView(schema)))));

  // Open the operation the address names (a link from elsewhere, or a reload).
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target?.tagName === 'DETAILS') target.open = true;
  target?.scrollIntoView();
}

async function load() {
  try {
    const response = await fetch('/openapi.json', { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    doc = await response.json();
    render();
  } catch (err) {
    const main = document.getElementById('doc');
    clear(main);
    main.append(h('p', { class: 'error', role: 'alert' }, `Could not load /openapi.json: ${err.message}`));
  }
}

window.addEventListener('hashchange', () => {
  const target = document.getElementById(location.hash.slice(1));
  if (target?.tagName === 'DETAILS') target.open = true;
});

load();
