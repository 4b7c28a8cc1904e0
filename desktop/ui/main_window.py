"""The main window: queue | compare view | settings, a log dock, menus and shortcuts."""

from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QSplitter

from desktop.state import AppController, JobSettings
from desktop.state.jobs_model import EDITABLE
from desktop.ui import help_pages
from desktop.ui.compare_view import CompareView
from desktop.ui.export_dialog import ExportDialog
from desktop.ui.job_display import JobDisplay, job_display
from desktop.ui.log_panel import LogPanel
from desktop.ui.model_manager import ModelManagerDialog
from desktop.ui.queue_panel import QueuePanel
from desktop.ui.settings_panel import SettingsPanel
from desktop.ui.start_bar import StartBar
from desktop.ui.status_indicator import StatusIndicator

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif *.heic *.heif)"


class MainWindow(QMainWindow):
    closed = Signal()
    """The window was closed (the app then closes the engine and ends)."""

    def __init__(self, controller: AppController, ui_settings: QSettings | None = None) -> None:
        super().__init__()
        self.controller = controller
        self.ui_settings = ui_settings or QSettings()
        self.setWindowTitle("DreamClear Studio")
        self.setAcceptDrops(True)
        self.resize(1280, 800)

        # 1. panels
        self.start_bar = StartBar(controller)
        self.queue = QueuePanel(controller.jobs, footer=self.start_bar)
        self.compare = CompareView()
        self.settings_panel = SettingsPanel(controller.settings, controller.models)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget, stretch in ((self.queue, 0), (self.compare, 1), (self.settings_panel, 0)):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(self.splitter.indexOf(widget), stretch)
        self.splitter.setSizes([320, 700, 300])
        self.setCentralWidget(self.splitter)
        self.log_panel = LogPanel(controller.log)
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("logDock")
        self.log_dock.setWidget(self.log_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.log_dock.hide()  # for when something goes wrong; warnings show in the status bar
        controller.log.lineAdded.connect(self._show_problem)
        self.status_indicator = StatusIndicator(controller.status)
        self.statusBar().addPermanentWidget(self.status_indicator)

        # 2. wiring
        self.queue.selectedJob.connect(self.show_job)
        self.queue.selectedJob.connect(self.edit_settings_of)
        self.queue.selectedJob.connect(self.start_bar.show_job)
        self.start_bar.selectJob.connect(self.queue.select)
        self.settings_panel.getModel.connect(self.open_models)
        self.settings_panel.editDefaults.connect(self.queue.clear_selection)
        controller.jobFinished.connect(self._job_finished)
        controller.jobs.jobChanged.connect(self._job_changed)
        controller.jobs.rowsInserted.connect(self._jobs_added)
        self._shown: JobDisplay | None = None
        self._shown_id = ""
        self.genir_window = None
        self.settings_panel.applyToSelected.connect(self.apply_settings_to_selected)
        self._build_menus()
        self._restore_geometry()

    # --- the dataset wizard -----------------------------------------------------------------

    def dataset_wizard(self):
        """The GenIR wizard's window, made on first use (one for the app)."""
        if self.genir_window is None:
            from desktop.state.genir_wizard import GenirWizard
            from desktop.ui.genir_wizard.window import GenirWizardWindow

            wizard = GenirWizard(self.controller.client, parent=self)
            self.genir_window = GenirWizardWindow(wizard, self.controller.models)
            self.genir_window.manageModels.connect(self.open_models)
        return self.genir_window

    def new_dataset(self) -> None:
        window = self.dataset_wizard()
        if window.wizard.run is None:
            window.go("sources")
        window.show()
        window.raise_()

    def open_dataset_run(self) -> None:
        window = self.dataset_wizard()
        window.show()
        window.ask_open_run()

    # --- menus ------------------------------------------------------------------------------

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts work whatever has the focus
        return action

    def _build_menus(self) -> None:
        c = self.controller
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open images…", self.open_images, QKeySequence.StandardKey.Open)
        self._action(file, "Open &folder…", self.open_folder, "Ctrl+Shift+O")
        self._action(file, "&Paste image", self.paste, QKeySequence.StandardKey.Paste)
        self.export_action = self._action(file, "&Export results…", self.export, "Ctrl+E")
        file.addSeparator()
        self._action(file, "&New dataset (GenIR)…", self.new_dataset)
        self._action(file, "Open dataset &run…", self.open_dataset_run)
        file.addSeparator()
        # Ctrl+Q by name: the standard Quit key is empty on some platforms (Windows, offscreen)
        self._action(file, "&Quit", self.close, "Ctrl+Q")
        queue = bar.addMenu("&Queue")
        self._action(
            queue, "Re&store (start the waiting photos)", self.start_bar.start, "Ctrl+Return"
        )
        self._action(
            queue, "Run a&gain with other settings", self.start_bar.again, "Ctrl+Shift+Return"
        )
        self._action(
            queue,
            "&Cancel selected",
            lambda: [c.cancel(i) for i in self.queue.selected_ids()],
            "Delete",
        )
        self._action(queue, "Cancel &all", c.cancel_all, "Ctrl+Shift+Delete")
        self._action(
            queue,
            "&Retry selected",
            lambda: [c.retry(i) for i in self.queue.selected_ids()],
            "Ctrl+R",
        )
        self._action(queue, "Retry all &failed", c.retry_failed, "Ctrl+Shift+R")
        self._action(queue, "Move &up", lambda: self._move(-1), "Alt+Up")
        self._action(queue, "Move &down", lambda: self._move(1), "Alt+Down")
        self._action(queue, "C&lear finished", c.clear_finished, "Ctrl+Shift+L")
        engine = bar.addMenu("&Engine")
        self._action(engine, "&Models…", self.open_models, "Ctrl+M")
        self._action(engine, "&Restart engine", c.restart_engine)
        view = bar.addMenu("&View")
        toggle_log = self.log_dock.toggleViewAction()
        toggle_log.setShortcut(QKeySequence("Ctrl+L"))
        view.addAction(toggle_log)
        self.addAction(toggle_log)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Getting started", lambda: help_pages.getting_started(self).open())
        self._action(help_menu, "&README", lambda: help_pages.readme(self).open())
        self._action(help_menu, "Copy &diagnostic report", self.copy_diagnostics, "Ctrl+Shift+D")
        self._action(help_menu, "&About", lambda: help_pages.about(self).open())

    # --- actions ----------------------------------------------------------------------------

    def open_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "", IMAGE_FILTER)
        if files:
            self.controller.add_paths(files)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.controller.add_paths([folder])

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasUrls():
            self.controller.add_paths([u.toLocalFile() for u in mime.urls() if u.isLocalFile()])
        elif mime is not None and mime.hasImage():
            self.controller.add_image(QGuiApplication.clipboard().image())
        else:
            self.statusBar().showMessage("The clipboard holds no image", 4000)

    def _show_problem(self, line: str, level: int) -> None:
        """A warning or error in the status bar while the log is closed: its first line."""
        if level >= logging.WARNING and not self.log_dock.isVisible():
            message = line.splitlines()[0].split(": ", 1)[-1]  # without time, level and logger
            self.statusBar().showMessage(f"{message}  (View > Log for details)", 15_000)

    def copy_diagnostics(self) -> None:
        QGuiApplication.clipboard().setText(self.controller.diagnostic_report())
        self.statusBar().showMessage("Diagnostic report copied to the clipboard", 4000)

    def edit_settings_of(self, job_id: str) -> None:
        """The panel edits a job that has not run (edits apply to it at once); else the defaults."""
        c = self.controller
        job = c.jobs.job(job_id)
        if job is not None and job.state in EDITABLE:
            self.settings_panel.set_model(JobSettings(c.jobs, job_id, c.settings))
        else:
            self.settings_panel.set_model(c.settings)

    def apply_settings_to_selected(self) -> None:
        for job_id in self.queue.selected_ids():
            self.controller.apply_settings(job_id)

    def _move(self, delta: int) -> None:
        job_id = self.queue.current_id()
        if job_id and self.controller.move(job_id, delta):
            self.queue.select(job_id)

    def open_models(self, *_: object) -> None:
        ModelManagerDialog(self.controller, self).open()

    def export(self) -> None:
        results = [job for job in self.controller.jobs.jobs if job.state == "done"]
        if not results:
            self.statusBar().showMessage("Nothing to export yet", 4000)
            return
        self.export_dialog = ExportDialog(
            results, self.ui_settings, self, client=self.controller.client
        )
        self.export_dialog.open()

    # --- compare view -----------------------------------------------------------------------

    def _job_finished(self, job_id: str) -> None:
        """Show a new result unless another result is shown; a job whose settings are being
        edited keeps the selection."""
        current = self.controller.jobs.job(self.queue.current_id())
        if current is None or current.state not in ("done", *EDITABLE):
            self.queue.select(job_id)  # shows it
        elif current.state in EDITABLE or current.id == job_id:
            self.show_job(job_id)

    def show_job(self, job_id: str) -> None:
        """Show a job in the compare view: its photo against its result (with its tile grid
        and map), its latest preview while it runs, or itself until there is either."""
        job = self.controller.jobs.job(job_id)
        if job is None:
            return
        display = job_display(job)
        if display == self._shown:
            return  # a progress update: nothing new to show
        self._shown, self._shown_id = display, job_id
        self.compare.set_images(display.before, display.after, after_label=display.after_label)
        if display.result:
            self.compare.set_tile_grid(list(job.tile_grid))
            if job.map_path:
                self.compare.set_degradation_map(job.map_path)

    def _job_changed(self, job_id: str) -> None:
        if job_id == self._shown_id:
            self.show_job(job_id)

    def _jobs_added(self, _parent, first: int, _last: int) -> None:
        """Photos added while no row is chosen show at once (the first of them), without
        choosing a row (which would make the settings panel edit that job)."""
        if not self.queue.current_id():
            self.show_job(self.controller.jobs.jobs[first].id)

    # --- drag and drop, geometry ------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.controller.add_paths(paths)
            event.acceptProposedAction()

    def _restore_geometry(self) -> None:
        for key, restore in (
            ("window/geometry", self.restoreGeometry),
            ("window/state", self.restoreState),
            ("window/splitter", self.splitter.restoreState),
        ):
            value = self.ui_settings.value(key)
            if isinstance(value, QByteArray):
                restore(value)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.ui_settings.setValue("window/geometry", self.saveGeometry())
        self.ui_settings.setValue("window/state", self.saveState())
        self.ui_settings.setValue("window/splitter", self.splitter.saveState())
        self.controller.settings.sync()
        super().closeEvent(event)
        if event.isAccepted():
            self.closed.emit()
