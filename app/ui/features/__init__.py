"""One folder per feature of the window. Each holds a controller (a ``Feature``: its jobs,
signals, docks and menu actions) and the panels and dialogs only it shows. The main window
only hosts them: layout, menus, toolbar, status bar, and a loop over features at start and
at close. Features reach the window through ``app.ui.host.Host`` and each other through their
public methods (``host.features.<name>``), never through underscores."""
