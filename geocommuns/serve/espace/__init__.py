"""geocommuns.serve.espace: the technician web space at ``/espace/`` (HTTP and HTML).

The logic lives in :mod:`geocommuns.contrib.portal`; this package only turns requests
into its calls and its answers into pages (Jinja2 templates, autoescaped):

- :mod:`.web`: the space's context, pages, sessions in cookies, CSRF checks;
- :mod:`.account`: sign-in, sign-out, the home page;
- :mod:`.deliveries`: upload, check report, rejected rows, mapping assistant, preview,
  submission;
- :mod:`.corrections`: the list of a commune's features and the correction form;
- :mod:`.queue`: the EPCI's review queue (submissions and citizens' reports);
- :mod:`.app`: the routes, and :func:`.app.espace_from_config`, what ``geocommuns
  serve`` mounts at ``/espace/``.
"""
