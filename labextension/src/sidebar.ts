/**
 * The sidebar: server controls, loaded and installed models with memory figures,
 * and the metrics summary with a decode-speed chart.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { h, sparkline } from './dom';
import { Action, OllamaModel, formatBytes } from './model';

async function confirm(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

export class OllamaSidebar extends Widget {
  private _unsubscribe: () => void;

  constructor(private readonly _model: OllamaModel) {
    super();
    this.id = 'ollama-nb-sidebar';
    this.addClass('jp-OllamaSidebar');
    this.title.caption = 'Ollama';
    this._unsubscribe = _model.subscribe(() => this.render());
    this.render();
  }

  protected onAfterShow(): void {
    this._model.setDetailsWanted(true);
  }

  protected onAfterHide(): void {
    this._model.setDetailsWanted(false);
  }

  dispose(): void {
    this._unsubscribe();
    super.dispose();
  }

  private _button(label: string, action: Action, model?: string, confirmText?: string): HTMLElement {
    const button = h(
      'button',
      {
        class: 'jp-Button jp-mod-styled jp-OllamaSidebar-button',
        'data-action': action,
        onclick: () => void this._run(action, model, label, confirmText)
      },
      label
    );
    if (this._model.busy) {
      button.setAttribute('disabled', '');
    }
    return button;
  }

  private async _run(action: Action, model: string | undefined, label: string, confirmText?: string): Promise<void> {
    if (confirmText && !(await confirm(`${label}?`, confirmText, label))) {
      return;
    }
    await this._model.act(action, model);
  }

  render(): void {
    const m = this._model;
    const s = m.status;
    const sections: HTMLElement[] = [h('h2', {}, 'Ollama')];

    if (m.error !== null) {
      sections.push(h('p', { class: 'jp-OllamaSidebar-error' }, m.error));
    }
    if (s === null) {
      sections.push(h('p', {}, m.error === null ? 'Checking the server…' : ''));
      this.node.replaceChildren(...sections);
      return;
    }

    const facts = [
      s.reachable ? `Ollama ${s.version ?? '?'}` : null,
      s.host,
      s.profile ? `profile ${s.profile}` : null,
      s.breaker !== 'closed' ? `circuit breaker ${s.breaker}` : null
    ].filter(Boolean);
    sections.push(
      h(
        'p',
        { class: 'jp-OllamaSidebar-state' },
        h('span', { class: 'jp-OllamaSidebar-badge', 'data-state': s.state }, s.state),
        ' ',
        facts.join(' · ')
      )
    );
    if (!s.reachable) {
      sections.push(h('p', { class: 'jp-OllamaSidebar-error' }, s.error ?? `Nothing answers at ${s.host}.`));
    }

    // Server controls: only where the manager can act (a local host).
    if (s.manager.available) {
      sections.push(
        h(
          'div',
          { class: 'jp-OllamaSidebar-controls' },
          s.reachable
            ? this._button(
                'Stop server',
                'stop',
                undefined,
                'Stop the Ollama server? Running requests from every notebook will fail. Only a server ollama_nb started can be stopped.'
              )
            : this._button('Start server', 'start')
        )
      );
    } else if (s.manager.reason) {
      sections.push(h('p', { class: 'jp-OllamaSidebar-note' }, s.manager.reason));
    }
    if (m.lastAction) {
      sections.push(
        h('p', { class: m.lastAction.ok ? 'jp-OllamaSidebar-note' : 'jp-OllamaSidebar-error' }, m.lastAction.message)
      );
    }

    sections.push(h('h3', {}, 'Loaded'));
    if (s.loaded.length === 0) {
      sections.push(h('p', { class: 'jp-OllamaSidebar-note' }, 'No model is loaded.'));
    } else {
      sections.push(
        h(
          'ul',
          { class: 'jp-OllamaSidebar-list' },
          ...s.loaded.map(l =>
            h(
              'li',
              { class: 'jp-OllamaSidebar-loaded', 'data-model': l.name },
              h('span', { class: 'jp-OllamaSidebar-name' }, l.name),
              h(
                'span',
                { class: 'jp-OllamaSidebar-meta' },
                `${formatBytes(l.sizeBytes)}, ${Math.round(l.gpuShare * 100)}% GPU` +
                  (l.contextLength ? `, ctx ${l.contextLength}` : '')
              ),
              this._button('Unload', 'unload', l.name, `Unload ${l.name} from memory? The next request will load it again.`)
            )
          )
        )
      );
    }

    sections.push(h('h3', {}, 'Installed'));
    if (m.modelsError) {
      sections.push(h('p', { class: 'jp-OllamaSidebar-error' }, m.modelsError));
    }
    if (m.models && m.models.length > 0) {
      sections.push(
        h(
          'ul',
          { class: 'jp-OllamaSidebar-list' },
          ...m.models.map(model =>
            h(
              'li',
              { class: 'jp-OllamaSidebar-model', 'data-model': model.name },
              h('span', { class: 'jp-OllamaSidebar-name' }, model.name),
              h(
                'span',
                { class: 'jp-OllamaSidebar-meta' },
                [model.parameterSize, model.quantization, formatBytes(model.sizeBytes)].filter(Boolean).join(' · ')
              ),
              h(
                'span',
                { class: 'jp-OllamaSidebar-caps' },
                ...(model.capabilities ?? []).map(c => h('span', { class: 'jp-OllamaSidebar-cap' }, c))
              ),
              model.loaded ? h('span', { class: 'jp-OllamaSidebar-note' }, 'loaded') : this._button('Warm', 'warm', model.name)
            )
          )
        )
      );
    } else if (m.models) {
      sections.push(h('p', { class: 'jp-OllamaSidebar-note' }, s.reachable ? 'No model is installed.' : 'Unknown while the server is unreachable.'));
    }

    sections.push(h('h3', {}, 'Metrics'));
    sections.push(...this._metrics());
    this.node.replaceChildren(...sections);
  }

  private _metrics(): HTMLElement[] {
    const { metrics, metricsError } = this._model;
    if (metricsError) {
      return [h('p', { class: 'jp-OllamaSidebar-error' }, metricsError)];
    }
    if (!metrics) {
      return [];
    }
    if (!metrics.available) {
      return [h('p', { class: 'jp-OllamaSidebar-note' }, metrics.reason)];
    }
    if (metrics.requests === 0) {
      return [h('p', { class: 'jp-OllamaSidebar-note' }, `No requests in the last ${metrics.window}.`)];
    }
    const fmt = (v: number | null, digits: number) => (v === null ? '–' : v.toFixed(digits));
    const table = h(
      'table',
      { class: 'jp-OllamaSidebar-metrics' },
      h('tr', {}, ...['model', 'req', 'err', 'p50 s', 'tok/s'].map(t => h('th', {}, t))),
      ...metrics.models.map(row =>
        h(
          'tr',
          {},
          h('td', {}, row.model),
          h('td', {}, String(row.requests)),
          h('td', {}, String(row.errors)),
          h('td', {}, fmt(row.p50LatencyS, 2)),
          h('td', {}, fmt(row.meanDecodeTps, 1))
        )
      )
    );
    const chart = h(
      'figure',
      { class: 'jp-OllamaSidebar-figure' },
      sparkline(metrics.series.map(p => p.decodeTps)),
      h('figcaption', {}, `Decode tokens/s, last ${metrics.series.length} requests (${metrics.window})`)
    );
    return metrics.series.length > 0 ? [table, chart] : [table];
  }
}
