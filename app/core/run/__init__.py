"""Running code: the sandbox (``sandbox``; its limits and results in ``result``, its mounts in
``mounts``, the child's bootstrap in ``bootstrap``), /fix on a code block (``fix``) and on the
project's own tests (``project_tests``)."""
