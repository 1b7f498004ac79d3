"""The nightly backup's storage: a snapshot store on SQLite, and what reads it back.

On disk, under the backup's destination folder::

    media_files/                the server's media folder, every video md5-verified, never
                                deleted (a video gone from the server stays)
    media_versions/<when>/      old copies of videos that changed on the server
    text_files/store.sqlite3    the snapshot store (:mod:`.store`, schema in :mod:`.schema`)
    text_files/latest/          the newest snapshot as files (symlink to .latest-<id>/)
    backup_log.txt              one block per run

Modules: :mod:`.codec` (hashing, compression, listing chunks), :mod:`.schema`,
:mod:`.store`, :mod:`.files` (listing names), :mod:`.restore` (files from a snapshot),
:mod:`.verify`. The run itself is :mod:`longterm_sync.pipelines.backup`.
"""
