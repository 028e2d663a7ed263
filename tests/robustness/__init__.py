"""Trust boundaries and fault injection, one module per kind of threat:

- untrusted files: ``test_untrusted_pickle``, ``test_untrusted_native_exports`` (.pt2, TorchScript),
  ``test_untrusted_onnx`` (external data, malformed graphs);
- damaged files: ``test_damaged_weights`` (safetensors), ``test_damaged_idx_without_asserts``
  (IDX under ``python -O``), ``test_damaged_baselines`` (bench ``--compare`` files);
- crash safety and concurrency: ``test_crash_safety`` (kill -9, full disk), ``test_concurrent_writers``;
- hostile input: ``test_hostile_input`` (children, paths, records, numeric options, interrupts);
- environment: ``test_no_silent_cuda_fallback``, ``test_torch_floor``;
- ``test_verify_command``: what ``fnnkit verify`` reports, and that it only reads.
"""
