"""geocommuns.contrib.portal: the logic of the technician web space (``/espace/``).

No HTTP here: :mod:`geocommuns.serve.espace` turns requests into calls of these modules.

- :mod:`.options`: the space's run-time options (folder, upload cap, session length);
- :mod:`.sessions`: browser sessions (random ids, stored hashed, expiring) and their CSRF
  tokens;
- :mod:`.throttle`: failed sign-ins slowed down per account and per address;
- :mod:`.signin`: signing in with a user's name and token;
- :mod:`.uploads`: the deliveries a technician sends, kept until they are submitted;
- :mod:`.check`: the same harmonisation as ``geocommuns validate``, with French advice
  for each group of rejected rows;
- :mod:`.assistant`: the mapping assistant (columns beside fields, value maps,
  constants, coordinates) and the commune's source declaration it writes;
- :mod:`.preview`: what a delivery changes, and its submission through the contribution
  path;
- :mod:`.correct`: the form of one feature and its correction through the Part 4 rules.
"""
