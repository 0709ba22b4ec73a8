"""The hostile-input suite: each test builds one careless or hostile input and checks the bar.

The bar, for every kind of data (a new modality adds its own file here on the day it lands):
- a clear message that names the file (and line, for text) and the fix, with exit code 2 from
  the CLI and no traceback; or, where the user asked for it (--skip-bad-files), a counted skip;
- nothing already written is lost (run folders, checkpoints, the user's own files);
- nothing hangs or exhausts memory: cases that would allocate run in a subprocess under an
  address-space limit (resource.RLIMIT_AS, set after the imports);
- nothing from a file is executed or rendered: no pickles, no YAML tags, HTML escaped.
Files: test_config_input (YAML, --set, flags), test_data_files (images, text, caches),
test_encoder_files (encoder.json, weights), test_evaluation (meaningless metrics, embed),
test_label_files (labels CSVs and file-name patterns of flat folders), test_text_run_inputs
(a text run's evaluation sets, data_args, a run folder without its tokenizer), test_series_files
(UCR .tsv / .ts, UCI HAR, .npy / .npz and their labels files), test_audio_files, test_episode_files
(damaged episode shards and manifests), test_agent_run_inputs (collect and agent-run mistakes),
test_methods (impossible batches and labels), test_report_input (received run folders, Ctrl-C),
test_run_folder (reused, mistyped and symlinked run folders).
"""
