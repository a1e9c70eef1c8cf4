/** A tiny element builder: the views are small enough not to need React. */

export type Child = Node | string | null | undefined | false;

export function h(
  tag: string,
  attrs: Record<string, string | ((event: Event) => void)> = {},
  ...children: Child[]
): HTMLElement {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === 'function') {
      element.addEventListener(key.replace(/^on/, '').toLowerCase(), value);
    } else {
      element.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child);
    }
  }
  return element;
}

const SVG = 'http://www.w3.org/2000/svg';

/**
 * A sparkline of `values` (oldest first) with its axis range in a title, so the
 * chart still says something to a screen reader.
 */
export function sparkline(values: number[], width = 220, height = 48, unit = 'tok/s'): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('class', 'jp-OllamaChart');
  svg.setAttribute('role', 'img');
  const title = document.createElementNS(SVG, 'title');
  svg.append(title);
  if (values.length === 0) {
    title.textContent = 'No data yet';
    return svg;
  }
  const max = Math.max(...values);
  const min = Math.min(0, ...values);
  const span = max - min || 1;
  const pad = 2;
  const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
  const points = values.map((v, i) => {
    const x = pad + i * step;
    const y = pad + (height - 2 * pad) * (1 - (v - min) / span);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points.join(' '));
  line.setAttribute('fill', 'none');
  line.setAttribute('class', 'jp-OllamaChart-line');
  svg.append(line);
  title.textContent = `${values.length} requests, ${min.toFixed(1)}–${max.toFixed(1)} ${unit}`;
  return svg;
}
