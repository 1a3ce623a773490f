// SVG arrowhead markers, one per status, for the service map's arrows and the policy view's
// connector lines: the same shape in both, painted by a fill colour or a CSS class.

export function ArrowHeads<S extends string>(props: {
  idPrefix: string;
  statuses: readonly S[];
  paint: (s: S) => { fill?: string; class?: string };
}) {
  return (
    <defs>
      {props.statuses.map((s) => (
        <marker
          key={s}
          id={`${props.idPrefix}${s}`}
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto"
        >
          <path d="M 0 0 L 10 5 L 0 10 z" {...props.paint(s)} />
        </marker>
      ))}
    </defs>
  );
}
