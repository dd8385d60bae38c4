"""The tasks of the table driver, one file each (:class:`..task.TableTask`), by the name a table file gives as its
``kind:``. A new task is a file here with its ``TASK``, and its name in :data:`TASKS`."""

from ..task import Table, TableTask
from . import classification, translation

TASKS = {task.name: task for task in (translation.TASK, classification.TASK)}
DEFAULT = translation.TASK.name  # the kind of a table file that names none


def task_of(table: Table) -> TableTask:
    """The task of a table read by :func:`..spec.load_table` (which checked its ``kind``)."""
    return TASKS[table["kind"]]
