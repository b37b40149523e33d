"""Pure-tensor kernels for turning decoded frames into palettised animation frames.

Every function takes and returns torch tensors on the caller's device and runs as batched
tensor operations (no per-pixel Python, no host round-trips in the hot path), so the same
code serves the CPU path and the GPU path (frames NVDEC left in GPU memory). On CPU tensors a
few kernels hand their inner loop to a numba-compiled loop instead (the ``*_scan`` modules, see
:mod:`kernels.compiled`), each held by a test to its torch kernel's output (the nearest-colour
search to the exact answer, which the torch tiers give wherever they are exact); GPU tensors, and the
CPU without numba, take the torch kernels. Typical use for one clip (uint8 frames [N, 3, H, W]):

    from animated_previews.kernels.resize import resize
    from animated_previews.kernels.palette import median_cut
    from animated_previews.kernels.remap import remap

    small = resize(frames, 360, 640)
    palette = median_cut(small, max_colours=255, sample_stride=4)
    indices = remap(small, palette)  # uint8 [N, 360, 640], ordered dither

Nothing is re-exported here on purpose: ``kernels.resize`` and ``kernels.remap`` name both
a module and its main function, and importing the function into the package would shadow
the module (``import animated_previews.kernels.remap as m`` would then give the function).
"""
