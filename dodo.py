"""doit tasks for imageworks-loader: `doit list`, `doit snapshot`.

Hydra overrides of the composed config pass as one doit variable:
`doit snapshot overrides="registry.dir=/srv/configs profile=ci"`.
The task bodies live in loader/tasks.py.
"""

import shlex

from doit import get_var

from loader.tasks import snapshot_task

DOIT_CONFIG = {"default_tasks": ["snapshot"], "verbosity": 2}

OVERRIDES = shlex.split(get_var("overrides", ""))


def task_snapshot():
    """Regenerate the merged snapshot when a layer file changed."""
    return snapshot_task(OVERRIDES)
