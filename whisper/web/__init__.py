"""The web front end: a page and a local JSON API, served from the node's nursery.

Modules: ``bridge`` (the one door into the node), ``store`` (recent messages under our own
cursor, who spoke), ``hub`` (the one node subscription, fanned out to feeds), ``auth``
(token, Host and Origin), ``jsonio`` (bounded bodies, errors), ``api`` and ``feed`` (the
handlers), ``app`` (routes and error handlers) and ``server`` (hypercorn's trio worker).
The page itself is ``static/``: plain HTML, CSS and two JavaScript modules (``app.js``, and
``render.js`` that builds DOM nodes), no build step.
"""

from .server import WebServer

__all__ = ["WebServer"]
