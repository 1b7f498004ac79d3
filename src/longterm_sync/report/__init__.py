"""The study at a glance: a static HTML site rebuilt from a folder of downloaded files.

An experimenter opens one page each morning: who watched, who did not, whose phone lies face
down, who speeds videos up, who reported missing videos, who changed phones. The site is a
folder of plain files (relative links, inline CSS, no script, no network fetch), so it opens
from disk or a USB stick and needs no server.

Layers: :mod:`.study` reads a folder (download-results' files or a backup's ``latest/``) into
small per-participant records; :mod:`.heatmap` and :mod:`.attention` derive the overview's
parts (the heatmap's cells are user_activity's, computed by the same functions);
:mod:`.figures` keeps the per-viewing sensor figures in a cache keyed by each result's
content; :mod:`.site` renders the Jinja2 templates. :mod:`longterm_sync.pipelines.report` is
the one entry point.
"""
