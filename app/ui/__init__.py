"""Qt widgets and the worker that runs app.core's long jobs off the GUI thread."""
