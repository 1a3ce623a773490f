import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { copyJSON } from '../shapes.ts';

/** Each row: a JSON value as the agent holds a shape's endpoint (parsed from its announcement). */
const ROWS: Array<{ name: string; text: string }> = [
  {
    name: 'an endpoint: numbers, strings, a label list',
    text: '{"ID":7,"identity":1234,"cluster_name":"default","namespace":"prod","labels":["k8s:app=app","k8s:io.kubernetes.pod.namespace=prod"],"pod_name":"app"}',
  },
  {
    name: 'workloads: objects in an array',
    text: '{"identity":5,"workloads":[{"name":"web","kind":"Deployment"},{"name":"x","kind":"ReplicaSet"}]}',
  },
  { name: 'the identity alone', text: '{"identity":2}' },
  {
    name: 'empty object and arrays, null, booleans',
    text: '{"a":{},"b":[],"c":null,"d":true,"e":[[],[1,[2]]]}',
  },
  { name: 'an own "__proto__" key stays a key', text: '{"__proto__":{"x":1},"y":2}' },
  { name: 'a primitive', text: '"text"' },
];

describe('copyJSON: a per-record copy of a shape endpoint, as JSON.parse of its text', () => {
  for (const row of ROWS) {
    test(row.name, () => {
      const template = JSON.parse(row.text) as unknown;
      const copy = copyJSON(template);
      const parsed = JSON.parse(row.text) as unknown;
      assert.deepEqual(copy, parsed);
      assert.equal(JSON.stringify(copy), row.text, 'same keys in the same order');
      assert.equal(Object.getPrototypeOf(copy ?? {}), Object.getPrototypeOf(parsed ?? {}));
      // nothing shared with the template: a change to one record's objects reaches no other
      const shared: string[] = [];
      const walk = (a: unknown, b: unknown, path: string) => {
        if (typeof a !== 'object' || a === null) return;
        if (a === b) shared.push(path);
        for (const k of Object.keys(a)) walk((a as never)[k], (b as never)[k], `${path}.${k}`);
      };
      walk(copy, template, '$');
      assert.deepEqual(shared, []);
    });
  }
});
