/**
 * ollama_nb's JupyterLab extension: a status bar item for the shared Ollama server,
 * a sidebar with models and metrics, a palette command, and settings.
 */

import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';

import { OllamaModel, ShowOptions } from './model';
import { requestAPI } from './request';
import { OllamaSidebar } from './sidebar';
import { OllamaStatusItem } from './statusItem';

const PLUGIN_ID = 'ollama_nb:plugin';
const OPEN_COMMAND = 'ollama-nb:open-sidebar';
const REFRESH_COMMAND = 'ollama-nb:refresh';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
  '<path d="M8 3a3 3 0 0 0-3 3v3.2A6 6 0 0 0 3 14v3a4 4 0 0 0 4 4h10a4 4 0 0 0 4-4v-3a6 6 0 0 0-2-4.8V6a3 3 0 0 0-6 0v1.1a6 6 0 0 0-2 0V6a3 3 0 0 0-3-3zm1 12a1.2 1.2 0 1 1 0 .01zm6 0a1.2 1.2 0 1 1 0 .01z"/>' +
  '</g></svg>';

const ollamaIcon = new LabIcon({ name: 'ollama_nb:icon', svgstr: ICON_SVG });

interface Config {
  intervalMs: number;
  show: ShowOptions;
}

function readConfig(settings: ISettingRegistry.ISettings | null): Config {
  const interval = settings?.get('pollInterval').composite;
  const show = settings?.get('statusShows').composite;
  const fields = Array.isArray(show) ? show : ['model', 'tokensPerSecond'];
  return {
    intervalMs: Math.max(1, typeof interval === 'number' ? interval : 5) * 1000,
    show: { model: fields.includes('model'), tokensPerSecond: fields.includes('tokensPerSecond') }
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Status bar item and sidebar for the Ollama server used by ollama_nb.',
  autoStart: true,
  optional: [IStatusBar, ISettingRegistry, ICommandPalette, ILabShell],
  activate: async (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    registry: ISettingRegistry | null,
    palette: ICommandPalette | null
  ) => {
    let settings: ISettingRegistry.ISettings | null = null;
    if (registry) {
      try {
        settings = await registry.load(PLUGIN_ID);
      } catch (error) {
        console.warn('ollama_nb: settings could not be loaded; using defaults.', error);
      }
    }
    let config = readConfig(settings);
    const model = new OllamaModel(requestAPI, config.intervalMs);

    const sidebar = new OllamaSidebar(model);
    sidebar.title.icon = ollamaIcon;
    app.shell.add(sidebar, 'right', { rank: 900 });

    app.commands.addCommand(OPEN_COMMAND, {
      label: 'Ollama: Show Server and Models',
      caption: 'Open the Ollama sidebar',
      icon: ollamaIcon,
      execute: () => app.shell.activateById(sidebar.id)
    });
    app.commands.addCommand(REFRESH_COMMAND, {
      label: 'Ollama: Refresh Status',
      execute: () => model.refresh()
    });
    if (palette) {
      palette.addItem({ command: OPEN_COMMAND, category: 'Ollama' });
      palette.addItem({ command: REFRESH_COMMAND, category: 'Ollama' });
    }

    let item: OllamaStatusItem | null = null;
    if (statusBar) {
      item = new OllamaStatusItem(model, config.show, () => app.shell.activateById(sidebar.id));
      statusBar.registerStatusItem(PLUGIN_ID, { item, align: 'left', rank: 50 });
    }

    settings?.changed.connect(() => {
      const next = readConfig(settings);
      if (next.intervalMs !== config.intervalMs) {
        model.setInterval(next.intervalMs);
      }
      item?.setShow(next.show);
      config = next;
    });

    model.start();
  }
};

export default plugin;
