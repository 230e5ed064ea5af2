"""The bundled cloud emulator: each vendor's image API served on loopback for tests and demos.

It persists state in SQLite, runs asynchronous lifecycles with progress and injects faults.
Modules: `config` (settings), `store` (state), `faults` (fault injection, statistics),
`vendor` (what a vendor provides), `argon` (the Argon image API), `server` (serving, CLI),
`clock` (time sources), `testing` (helpers for synchronous tests).
See docs/emulator.md. It never imports kopf.
"""
