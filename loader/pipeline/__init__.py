"""The doit pipeline: the task graph and running it.

    graph            the composed config, the registry and each model's files
    tasks            hash:NAME, verify:NAME, snapshot
    operation_tasks  import:ollama, rediscover, probe:NAME, activate, audit
    actions          task actions that run an operation and fail in one line
    namespace        DOIT_CONFIG and the task_* generators dodo.py exposes
    checker          doit's file checker, from the hash cache's stat records
    state            the state folder (doit's database, reports)
    run_record       what a run did, task by task
    doit_reporter    doit's reporter: failures and JSON log lines as they happen
    refresh_report   the JSON report and Markdown summary of a refresh
    run              running the graph in-process (``imageworks-loader refresh``)

The pipeline sits below the operations: ``refresh`` runs it, and its actions
run operations through the ``invoke`` handed down with the graph.
"""
