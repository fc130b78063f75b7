"""Ready-made tools for agents: ``from agentkit.tools import calculator, Workspace, ...``.

- ``calculator``: exact arithmetic on an expression (a ``Tool``, ready to use).
- ``Workspace(root).tools()``: ``read_file``, ``write_file``, ``list_files``,
  ``search_files`` (and ``delete_file`` with ``allow_delete=True``), confined to ``root``.
- ``SqliteDatabase(path).tools()``: ``sql_query``, ``list_tables``, ``describe_table``;
  read-only unless ``allow_writes=True``.
- ``HttpFetch(allow_hosts=[...]).tools()``: ``http_fetch`` (GET), only to listed hosts.
- ``PythonExecutor(enabled=True).tools()``: ``run_python`` in a child process with time
  and memory limits; off unless enabled, and not a security sandbox.
- ``agentkit.tools.mcp.MCPClient``: the tools of an MCP server, over stdio or HTTP, that
  you allow (a submodule, imported on its own: it needs the ``mcp`` extra).

Every tool refuses bad input with ``agentkit.ToolError``, whose message the model sees,
and sizes its output for a small model's context.
"""

from .calculator import calculator
from .files import Workspace
from .http import HttpFetch
from .python_exec import PythonExecutor
from .sqlite import SqliteDatabase

__all__ = ["HttpFetch", "PythonExecutor", "SqliteDatabase", "Workspace", "calculator"]
