// XML escaping for the JUnit reports (validate, test, test --live): one place, so every report
// survives control characters and quotes in policy names, paths and messages.

/** Characters XML 1.0 cannot carry at all (controls, lone surrogates, U+FFFE/F) become U+FFFD. */
function xmlSafe(s: string): string {
  return s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');
}

/** Escapes text content. */
export function xmlText(s: string): string {
  return xmlSafe(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes an attribute value (also safe as text content). */
export function xmlAttr(s: string): string {
  // In attributes, newlines and tabs must be character references or parsers normalise them away.
  return xmlText(s)
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;')
    .replace(/\t/g, '&#9;');
}
