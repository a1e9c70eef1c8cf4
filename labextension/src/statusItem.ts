/** The status bar item: state, model and last decode speed; a click opens the sidebar. */

import { Widget } from '@lumino/widgets';

import { OllamaModel, ShowOptions } from './model';

export class OllamaStatusItem extends Widget {
  private _unsubscribe: () => void;

  constructor(
    private readonly _model: OllamaModel,
    private _show: ShowOptions,
    onClick: () => void
  ) {
    super();
    this.addClass('jp-OllamaStatus');
    this.node.title = 'Ollama server (click for models and metrics)';
    this.node.addEventListener('click', onClick);
    this._unsubscribe = _model.subscribe(() => this.render());
    this.render();
  }

  setShow(show: ShowOptions): void {
    this._show = show;
    this.render();
  }

  render(): void {
    const model = this._model;
    const state = model.error !== null ? 'error' : (model.status?.state ?? 'loading');
    this.node.dataset.state = state;
    this.node.textContent = model.statusText(this._show);
    const s = model.status;
    if (model.error !== null) {
      this.node.title = model.error;
    } else if (s) {
      const detail = s.reachable ? `Ollama ${s.version ?? ''} at ${s.host}` : (s.error ?? `Nothing answers at ${s.host}`);
      this.node.title = `${detail} (click for models and metrics)`;
    }
  }

  dispose(): void {
    this._unsubscribe();
    super.dispose();
  }
}
