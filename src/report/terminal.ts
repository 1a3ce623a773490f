// Text from input files (names, paths, messages quoting values) must not reach a terminal as
// control characters: escape sequences could clear the screen or fake output. Tabs stay.

/** C0 and C1 control characters, except tab and newline, written as `\xNN`. */
export function terminalSafe(s: string): string {
  return s.replace(
    /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
