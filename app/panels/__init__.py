"""The studio page, one module per panel, top to bottom: restore (the autosave banner), video
(clip and selection), region, curve, describe (caption and settings), reference, takes
(generate and keep), stems_mix (stems, their mix, the meter), export (files and projects).

Each module has `build(c)`, which creates its components as attributes of the shared namespace
`c` (inside the Blocks and layout the studio opens), and `wire(c)`, which connects their
events once every panel is built (a handler may read or update another panel's components).
Updates that several panels send (the frame, the project, the mix, the candidates) live in the
panel that owns those components. `common` holds the error rule every handler follows."""
