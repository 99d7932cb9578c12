"""Integrity: which files make a model, their hashes, version locks.

* ``artifacts``: which files a model is made of, checked against its root;
* ``hashing``: the parallel sha256 engine (and the ``loader.hashing`` API);
* ``hash_cache``: the stat cache, so unchanged files are not read again;
* ``progress``: the progress line; ``aggregate``: the hash locks compare;
* ``entry_hashing``: one registry entry hashed with the registry's settings;
* ``version_locks``: verify, lock, unlock; ``legacy_locks``: ImageWorks subset locks.

Opening files beneath a root and atomic writes live in ``loader.fileio``, the
inter-process file locks in ``loader.file_locks`` (both below the registry).
"""
