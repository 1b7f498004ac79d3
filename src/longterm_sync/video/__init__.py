"""compress_videos' engine: scene detection, per-scene CRF search on VMAF, joining, measuring.

Everything runs the ffmpeg of the ``imageio-ffmpeg`` wheel (libx264, libvmaf with the
built-in ``vmaf_v0.6.1`` model, the ``scdet`` scene detector) as asyncio subprocesses, so the
event loop only waits while ffmpeg works and Ctrl-C can kill every child at once.
"""
