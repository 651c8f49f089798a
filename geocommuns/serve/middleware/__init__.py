"""geocommuns.serve.middleware: the small WSGI middlewares a request goes through.

One module per job, each a function taking the application it wraps (see
:func:`geocommuns.serve.app.dispatcher` for the order):

- :mod:`.mount`: ``/espace/`` handed to the technician web space (its own upload cap);
- :mod:`.bodylimit`: request bodies over the cap refused (``413``), on every route;
- :mod:`.replicas`: a request carrying a token reads from the primary database;
- :mod:`.httpcache`: ETag, ``304 Not Modified`` and gzip of successful GET answers;
- :mod:`.cors`: CORS preflight answers and CORS headers of GET/HEAD answers;
- :mod:`.handoff`: the OGC API – Features Part 4 writes handed to the edit service;
- :mod:`.reports`: « Signaler une erreur », the citizens' report form (``/espace/signaler``);
- :mod:`.static`: the citizen map at ``/map/``;
- :mod:`.features`: features said as GeoJSON, and their ``Link`` header;
- :mod:`.query`: the query string corrected for pygeoapi, unknown parameters and
  out-of-range offsets refused;
- :mod:`.fast`: GeoJSON pages and items answered by the fast path;
- :mod:`.paging`: no ``next`` link after the last page.
"""
