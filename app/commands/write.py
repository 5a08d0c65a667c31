"""The write commands as values: create, update, patch and delete, each with its conditional form
(one module per interaction). The HTTP layer builds one from a request and runs it in its own write
transaction (``command(tx)`` is the work ``unit_of_work.run_write`` takes); the transaction engine
builds one per Bundle entry and runs it inside the Bundle's transaction with the target the Bundle
resolved (``command(tx, target)``). Either way it answers a ``WriteResult``."""

from __future__ import annotations

from app.commands.create import Create
from app.commands.delete import Delete
from app.commands.patch import Patch
from app.commands.update import Update

WriteCommand = Create | Update | Patch | Delete
