"""docs/reliability.md, rendered from the tests: `.venv/bin/python -m tests.reliability >
docs/reliability.md` (tests/records/test_bad_input.py checks the committed page is this text).

Three sources, each naming the test that proves every row:
- `tests.records.test_bad_input.CASES`: the bad-input cases that file runs itself (what the
  product does is rendered from the expectation the test asserts);
- `COVERED`: bad-input cases proven by older tests (test_ingest, test_ingest_contract,
  test_ingest_scale, test_cli, test_user_mistakes); a row citing test_ingest's DIRTY export
  names the (table, line, rule) of EXPECTED it relies on, which the tests check;
- `FAULTS`: what the product does when the machine fails under a command.
A case the product gets wrong is a strict xfail and is listed under "Known gaps", not as
what the product does.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.records import test_bad_input as bad
from tests.records.test_bad_input import (
    DATES,
    ENCODING,
    FILES,
    FORMATS,
    GROUPS,
    IDS,
    ROWS,
    VALUES,
    WHOLE,
)

INGEST = "tests/records/test_ingest.py"
CONTRACT = "tests/records/test_ingest_contract.py"
DIRTY = f"{INGEST}::test_each_rule_quarantines_its_row"
BAD = bad.THIS


@dataclass(frozen=True)
class Covered:
    group: str
    case: str
    broken: str
    does: str
    tests: tuple[str, ...]
    dirty: tuple[tuple[str, int, str], ...] = ()  # rows of test_ingest.EXPECTED relied on


COVERED: list[Covered] = [
    # files and columns
    Covered(FILES, "missing file", "usage.csv (or charges.csv) is not in the raw folder",
            "stops, exit 2: names the raw folder and the files it looked for (usage.csv or "
            "usage.csv.gz or usage.parquet); the previous outputs stay as they were",
            (f"{INGEST}::test_missing_required_file",
             "tests/pipeline/test_cli.py::test_ingest_missing_file_keeps_old_outputs")),
    Covered(FILES, "optional file absent", "no nps file",
            "ingests; nps is reported absent, no nps output is written",
            (f"{INGEST}::test_optional_nps_absent",)),
    Covered(FILES, "two files for one table", "usage.csv and usage.csv.gz side by side",
            "stops: “two files for table 'usage' (usage.csv, usage.csv.gz)”, keep exactly one",
            (f"{INGEST}::test_two_candidate_files",)),
    Covered(FILES, "misspelt column", "usage.csv's header says `msgs` for `messages`",
            "stops: names the file, the missing column 'messages' and the columns found "
            "('msgs' among them)",
            (f"{INGEST}::test_missing_column_names_file_column_and_found",)),
    Covered(FILES, "columns under other names, extra columns",
            "usage.csv names its columns `cust`, `msgs` and carries `note`",
            "ingests with `data.rename`; `note` is ignored and listed in the summary; the "
            "interim table holds the contract's columns only",
            (f"{INGEST}::test_renames_and_extra_columns",)),
    Covered(FILES, "two columns renamed onto one", "`data.rename` maps ts onto messages",
            "stops: “usage.csv: column 'messages' appears twice”",
            (f"{INGEST}::test_duplicate_column_after_rename",)),
    Covered(FILES, "empty file", "charges.csv has 0 bytes",
            "stops: “charges.csv: the file is empty”", (f"{INGEST}::test_empty_file",)),
    Covered(FILES, "header-only file", "usage.csv holds its header and no row",
            "stops: the table has no rows, it is required; the message names "
            "`data.allow_empty: [usage]`",
            (f"{CONTRACT}::test_header_only_required_table_is_a_contract_error",)),
    Covered(FILES, "header-only file, allowed", "the same with `data.allow_empty: [usage]`",
            "ingests; usage reported with 0 rows, its (empty) outputs written",
            (f"{CONTRACT}::test_allowed_empty_required_table_is_reported_with_zero_rows",)),
    Covered(FILES, "header-only optional file", "nps.csv holds only its header",
            "ingests; reported present with 0 rows (an absent file is reported absent)",
            (f"{CONTRACT}::test_optional_table_present_but_empty_differs_from_absent",)),
    Covered(FILES, "wrong delimiter (semicolon)", "usage.csv is `;`-separated",
            "stops: the missing column, and “the delimiter looks wrong”",
            (f"{INGEST}::test_wrong_delimiter_is_named",)),
    # encoding and line endings
    Covered(ENCODING, "non-UTF-8 bytes", "usage line 5 holds Latin-1 bytes",
            "stops: “usage.csv: not UTF-8 (line 5 …”", (f"{INGEST}::test_not_utf8_names_the_line",)),
    Covered(ENCODING, "BOM and CRLF", "customers.csv starts with a UTF-8 BOM; both files end "
            "lines in CRLF", "ingests every row; a bad value on line 5 is quarantined with its "
            "raw text", (f"{INGEST}::test_bom_and_crlf",)),
    # rows, fields, quoting
    Covered(ROWS, "quoted newlines", "a quoted channel spans two physical lines",
            "one record, kept with its newline; `line` counts records, so the bad row on "
            "physical line 6 is quarantined as line 5",
            (f"{INGEST}::test_line_counts_records_not_physical_lines",)),
    Covered(ROWS, "a field too many", "usage line 14 has a fourth value",
            "quarantines it as `malformed_row`: “Expected Number of Columns: 3 Found: 4”",
            (DIRTY,), (("usage", 14, "malformed_row"),)),
    Covered(ROWS, "blank lines", "usage.csv has a blank line 5 and blank lines at the end",
            "line 5 is quarantined as `malformed_row`, later lines keep their numbers, the "
            "trailing blank lines are ignored",
            (f"{INGEST}::test_blank_line_is_a_malformed_row_and_later_lines_stay_right",)),
    Covered(ROWS, "duplicate rows", "usage line 13 is an exact copy of line 3",
            "quarantines the copy as `duplicate_row` (“exact copy of line 3”), keeps the first",
            (DIRTY,), (("usage", 13, "duplicate_row"),)),
    Covered(ROWS, "a bad row at the end of a large file", "usage.csv of 300,000 rows: a bad "
            "count 11 lines before the last, a malformed line, a copy and a negative count",
            "quarantines each at its exact line (299,990 `bad_integer` …), keeps the 299,996 "
            "others; two runs write identical bytes",
            ("tests/records/test_ingest_scale.py::test_line_numbers_survive_chunks_and_malformed_lines",
             "tests/records/test_ingest_scale.py::test_two_runs_write_identical_bytes")),
    # compression and Parquet
    Covered(FORMATS, "gzip", "usage.csv.gz instead of usage.csv, a bad count inside",
            "ingests it like the CSV (the md5 is the gzip file's); the bad row quarantined",
            (f"{INGEST}::test_gzip_csv",)),
    Covered(FORMATS, "not gzip, not Parquet", "usage.csv.gz or usage.parquet holds other bytes",
            "stops: “usage.csv.gz: cannot read the file …”, “usage.parquet: cannot read the "
            "Parquet file …”", (f"{INGEST}::test_unreadable_files",)),
    Covered(FORMATS, "Parquet column of the wrong type", "usage.parquet's `messages` is a "
            "string column, one value `lots`",
            "quarantines that row (`line` = row index + 1) as `bad_integer`, keeps the others",
            (f"{INGEST}::test_parquet_input_with_a_wrong_typed_column",)),
    Covered(FORMATS, "Parquet floating-point ids", "customers.parquet's `customer_id` is DOUBLE",
            "stops: “customers.parquet: column 'customer_id' is typed DOUBLE …”, export ids "
            "as integers (BIGINT) or strings (VARCHAR)",
            (f"{CONTRACT}::test_float_customer_id_in_parquet_names_the_file_column_and_type",)),
    Covered(FORMATS, "Parquet DATE and UTC TIMESTAMP columns", "typed Parquet dates in a Jalali "
            "export; a TIMESTAMP in UTC", "typed dates are Gregorian whatever `data.calendar`; "
            "UTC instants converted to Asia/Tehran (06:30 UTC = 10:00)",
            (f"{INGEST}::test_parquet_native_types_are_gregorian_and_offsets_converted",)),
    # dates, times and calendars
    Covered(DATES, "impossible dates", "customers line 5 signed up on 2024-13-01; usage line 6 "
            "at 2024-02-30 10:00:00", "quarantines them as `bad_date` / `bad_timestamp`",
            (DIRTY,), (("customers", 5, "bad_date"), ("usage", 6, "bad_timestamp"))),
    Covered(DATES, "Jalali dates", "a Jalali export (`data.calendar: jalali`) with 30 Esfand "
            "1404 (1404 is not a leap year), Persian digits and a `Z` offset",
            "converts every date to the Gregorian day jdatetime gives (1403-01-01 = "
            "2024-03-20); quarantines 1404-12-30 as `bad_date`",
            (f"{INGEST}::test_jalali_dates_convert_to_the_right_day",
             f"{INGEST}::test_jalali_macro_agrees_with_jdatetime_day_by_day")),
    Covered(DATES, "offset timestamps", "`Z`, `+03:30`, `+0330`, `+00`, a `T`, fractions",
            "converts each to the business zone (Asia/Tehran), keeps every row",
            (f"{INGEST}::test_offsets_are_converted_to_the_business_zone",)),
    Covered(DATES, "Persian and Arabic-Indic digits", "ids, timestamps and counts in Persian "
            "digits, `٣٤`, an amount `۱۲٫۵`", "reads them as ASCII digits (12.5), keeps every row",
            (f"{INGEST}::test_persian_and_arabic_indic_digits",)),
    Covered(DATES, "dated in the future", "a signup on 2024-07-01, a usage row at 2024-07-01 "
            "when ingest runs on 2024-06-01", "quarantines them as `future_row`; they do not "
            "move the inferred as-of date",
            (DIRTY, f"{INGEST}::test_as_of_defaults_to_the_day_after_the_latest_valid_event",
             f"{INGEST}::test_aware_now_is_converted_to_the_business_zone"),
            (("customers", 10, "future_row"), ("usage", 8, "future_row"))),
    Covered(DATES, "events before signup", "a period and a usage row before the customer's "
            "signup_date", "quarantines them as `before_signup`",
            (DIRTY,), (("subscriptions", 10, "before_signup"), ("usage", 12, "before_signup"))),
    Covered(DATES, "events after the as-of date", "rows dated on or after the as-of date",
            "quarantines them as `after_as_of` (signups and period starts on the day itself "
            "too); they do not count toward the bad share",
            (DIRTY, f"{INGEST}::test_as_of_flag_quarantines_later_rows"),
            (("customers", 8, "after_as_of"), ("usage", 9, "after_as_of"))),
    Covered(DATES, "an as-of date outside the export", "`--as-of` before the export's first "
            "day, more than `data.max_as_of_gap_days` after its last event, or not a date",
            "stops, exit 2, naming the export's first day or the gap setting",
            (f"{CONTRACT}::test_as_of_on_or_before_the_first_day_is_a_contract_error",
             f"{CONTRACT}::test_as_of_long_after_the_latest_event_needs_the_gap_param",
             "tests/pipeline/test_user_mistakes.py::test_an_as_of_outside_the_export_is_an_error")),
    Covered(DATES, "resolved before opened", "a ticket resolved the day before it was opened",
            "quarantines it as `resolved_before_opened`", (DIRTY,),
            (("tickets", 3, "resolved_before_opened"),)),
    Covered(DATES, "a period ending before it starts", "subscriptions line 7 ends 10 days "
            "before it starts", "quarantines it as `period_order`", (DIRTY,),
            (("subscriptions", 7, "period_order"),)),
    Covered(DATES, "overlapping periods", "a period starting inside an earlier kept period",
            "quarantines it as `period_overlap`, naming the earlier period's line", (DIRTY,),
            (("subscriptions", 8, "period_overlap"),)),
    # values
    Covered(VALUES, "negative fee, zero top-up, negative count", "fee -1, amount 0, messages -1",
            "quarantines them as `out_of_range` (“fee '-1' is not >= 0”, “amount '0' is not > "
            "0”)", (DIRTY,), (("subscriptions", 14, "out_of_range"), ("charges", 3, "out_of_range"),
                              ("usage", 15, "out_of_range"))),
    Covered(VALUES, "NPS out of range", "a score of 11", "quarantines it as `out_of_range` "
            "(“score '11' is not <= 10”)", (DIRTY,), (("nps", 3, "out_of_range"),)),
    Covered(VALUES, "fractional counts", "messages 5.5", "quarantines it as `bad_integer`",
            (DIRTY,), (("usage", 7, "bad_integer"),)),
    Covered(VALUES, "text in a number", "fee `x`, amount `abc`", "quarantines them as "
            "`bad_number`", (DIRTY,), (("subscriptions", 15, "bad_number"),
                                        ("charges", 4, "bad_number"))),
    Covered(VALUES, "enum values outside the contract", "outcome `paused`, topic `refund` (and "
            "topic `Billing`)", "quarantines `paused` and `refund` as `bad_enum`, naming the "
            "allowed values; keeps `Billing` as `billing`",
            (DIRTY, f"{INGEST}::test_dirty_counts"),
            (("subscriptions", 6, "bad_enum"), ("tickets", 4, "bad_enum"))),
    Covered(VALUES, "missing required values", "an empty signup_date, an empty usage "
            "customer_id", "quarantines them as `missing_value`", (DIRTY,),
            (("customers", 9, "missing_value"), ("usage", 5, "missing_value"))),
    # ids and references
    Covered(IDS, "duplicate ids", "customer 2 twice", "keeps the first, quarantines the "
            "second as `duplicate_key` (“customer_id '2' already on line 3”)", (DIRTY,),
            (("customers", 6, "duplicate_key"),)),
    Covered(IDS, "duplicate referral codes", "a second customer with code R1",
            "quarantines the later one as `duplicate_key` (referral_code)", (DIRTY,),
            (("customers", 11, "duplicate_key"),)),
    Covered(IDS, "duplicate periods", "two periods of a customer starting the same day",
            "keeps the first, quarantines the second as `duplicate_key`", (DIRTY,),
            (("subscriptions", 9, "duplicate_key"),)),
    Covered(IDS, "dangling referrals", "referred_by `RX`, nobody's code",
            "quarantines the customer as `unknown_referrer`", (DIRTY,),
            (("customers", 7, "unknown_referrer"),)),
    Covered(IDS, "unknown customers", "a period and a usage row of customer 99",
            "quarantines them as `unknown_customer`", (DIRTY,),
            (("subscriptions", 12, "unknown_customer"), ("usage", 10, "unknown_customer"))),
    Covered(IDS, "rows of a quarantined customer", "rows of customers whose customers row is "
            "quarantined", "quarantines them as `customer_quarantined`; they do not count "
            "toward the table's bad share",
            (DIRTY, f"{INGEST}::test_customer_quarantined_does_not_count_toward_the_share"),
            (("subscriptions", 11, "customer_quarantined"), ("usage", 11, "customer_quarantined"))),
    Covered(IDS, "string ids", "ids `C1`, `C2`, `C3`; a usage row of `c1`",
            "keeps string ids as they are, compared case-sensitively: `c1` is `unknown_customer`",
            (f"{INGEST}::test_string_ids",)),
    # the export as a whole
    Covered(WHOLE, "a table over the bad-share threshold (in-process)", "2 of usage's 5 rows "
            "bad, `max_bad_share` 0.25, then 0.4", "stops naming the table, the share (40.0%) "
            "and the top rules; at 0.4 ingests", (f"{INGEST}::test_max_bad_share_stops_a_broken_export",)),
]


@dataclass(frozen=True)
class Fault:
    fault: str
    does: str
    tests: tuple[str, ...]
    gap: str = ""  # what goes wrong today (its test is a strict xfail)
    gap_tests: tuple[str, ...] = ()
    expects: str = ""  # what the gap's test expects


KILLED = ("simulate", "ingest", "observe", "features", "train", "evaluate", "score")
KILLS = "tests/pipeline/test_kill_commands.py"
FAULTS_TESTS = "tests/pipeline/test_faults.py"

FAULTS: list[Fault] = [
    Fault("kill -9 of `churn simulate`, `ingest`, `observe`, `features`, `train`, `evaluate` "
          "and `score --pipeline`, at each step of their commit (begin, written, recorded, "
          "exchanged)",
          "the output folder is the previous run or the new one, whole (every file matches its "
          "record); the next run succeeds and leaves no temp folder",
          tuple(f"tests/pipeline/test_kill.py::test_kill_at_every_commit_step[{s}]"
                for s in KILLED)),
    Fault("temp folders left by killed runs",
          "the next run of the stage removes the ones that are provably its own (a partial "
          "mark, its own record, or empty), never another folder",
          ("tests/pipeline/test_artifacts.py::test_leftovers_of_killed_runs_are_removed_and_only_those",)),
    Fault("a killed scoring's scratch folder",
          "the next scoring removes it (its process is gone); a running one's is kept",
          ("tests/pipeline/test_score.py::test_a_killed_scorings_scratch_folder_is_removed_by_the_next",)),
    Fault("a command that fails halfway",
          "the previous output stays as it was, the temp folder is removed",
          ("tests/pipeline/test_artifacts.py::test_a_failed_run_leaves_the_previous_output",
           "tests/pipeline/test_cli.py::test_ingest_missing_file_keeps_old_outputs")),
    Fault("two `churn ingest` at once, of different exports",
          "the second waits for the first (a lock beside the output); both exit 0; the output "
          "is one whole run, the last one's; nothing is left beside it",
          (f"{BAD}::test_two_ingests_at_once_leave_one_whole_run",)),
    Fault("two scorings of the same week at once",
          "both succeed; the week's folder is one whole result, the history holds the week once",
          ("tests/pipeline/test_score.py::test_scoring_the_past_and_the_history_replaces_a_week_whole",)),
    Fault("another ingest swaps the interim folder in while a scoring reads it",
          "the scoring stops (its inputs changed under it); nothing is written",
          ("tests/pipeline/test_score.py::test_an_export_swapped_in_while_scoring_stops_the_scoring",)),
    Fault("a stage's inputs from different runs, or changed after they were written",
          "the stage stops naming the command to rerun",
          ("tests/pipeline/test_artifacts.py::test_inputs_from_different_upstream_runs_are_refused",
           "tests/pipeline/test_artifacts.py::test_read_checks_each_file_against_its_record",
           "tests/pipeline/test_user_mistakes.py::test_stale_inputs_are_refused")),
    Fault("an unreachable tracking server (`MLFLOW_TRACKING_URI`)",
          "`churn register` and `churn report --track` stop in seconds, exit 2, naming the URI, "
          "before any work (report writes nothing)",
          ("tests/pipeline/test_cli_model.py::test_register_fails_fast_on_an_unreachable_server",
           "tests/pipeline/test_report.py::test_track_fails_fast_on_a_dead_server",
           "tests/models/test_mlflow.py::test_unreachable_server_fails_fast_naming_the_uri")),
    Fault("a tracking server that answers its health check and fails every API call (503)",
          "`register` stops within 60 s with a TrackingError naming the URI and the local store",
          ("tests/pipeline/test_user_mistakes.py::test_a_server_failing_its_api_stops_register_in_bounded_time",)),
    Fault("a read-only output file system",
          "`churn ingest` stops, exit 2: “cannot write data/.interim.lock: Read-only file "
          "system …”; the previous outputs stay whole",
          (f"{BAD}::test_read_only_output_ends_in_a_message",)),
    Fault("a full disk while `churn ingest` writes",
          "`churn ingest` stops, exit 2: “the disk is full: … No space left on device … Free "
          "some space”; the previous outputs stay whole and no temp folder is left",
          (f"{BAD}::test_full_disk_leaves_the_previous_outputs",
           f"{BAD}::test_full_disk_ends_in_a_message")),
    Fault("kill -9 of `churn report`, `backtest` and `score --as-of D` (a week of the "
          "history), at each step of their commit",
          "the folder is the previous run (the same folder, until the swap) or the new one, "
          "whole; the killed run's temp folder is beside it and the next run removes it",
          (f"{KILLS}::test_kill_report_at_every_commit_step",
           f"{KILLS}::test_kill_backtest_at_every_commit_step",
           f"{KILLS}::test_kill_score_of_a_week_at_every_step")),
    Fault("kill -9 of a command inside its MLflow run (`churn score`, after its run started)",
          "the run is left RUNNING; the next command that logs to the experiment marks it "
          "KILLED (a run whose `churn_host` is this machine and whose `churn_pid` no longer "
          "runs; nothing is deleted, other runs are left as they are)",
          (f"{KILLS}::test_kill_score_of_a_week_at_every_step",
           f"{KILLS}::test_kill_register_at_every_step")),
    Fault("kill -9 of `churn weekly`, at each step of its two commits (the ingested export, "
          "then the week's scores)",
          "each folder is the previous run or the new one, whole; killed between the two "
          "commits, the new export is in and its week not scored yet (the next `churn weekly` "
          "or `churn score` scores it); the next run succeeds and leaves no temp folder",
          (f"{KILLS}::test_kill_weekly_at_every_step_of_both_its_commits",)),
    Fault("kill -9 of `churn register`: after the new version is registered, after the "
          "champion rule, at each step of writing data/registered.json",
          "the champion alias is the previous version or the new one; registered.json the "
          "previous file or the new one, whole (a temp file beside it until the next run "
          "removes it); a killed run's version stays in the registry as 'challenger'",
          (f"{KILLS}::test_kill_register_at_every_step",)),
    Fault("kill -9 of `churn promote V` between moving the alias and tagging the version",
          "the champion is V; the next `promote V` succeeds and tags it",
          (f"{KILLS}::test_kill_promote_between_the_alias_and_its_tag",)),
    Fault("kill -9 of `churn contract`, at each step of writing the page",
          "the page is the previous one or the new one, whole; the next run removes the temp "
          "file",
          (f"{KILLS}::test_kill_contract_at_every_step",)),
    Fault("two runs at once of `churn simulate`, `observe`, `features`, `train`, `evaluate`, "
          "`report` or `score --pipeline`",
          "the second waits at the lock beside the output for the first to commit; both exit "
          "0; the output is one whole run, nothing is left beside it",
          tuple(f"{KILLS}::test_two_runs_of_a_stage_at_once_leave_one_whole_run[{s}]"
                for s in ("simulate", "observe", "features", "train", "evaluate", "report",
                          "score"))),
    Fault("two `churn weekly` jobs at once",
          "the second waits for the first (the job lock in paths.weekly); both exit 0; the "
          "export and its week are whole, the history holds the week once",
          (f"{KILLS}::test_two_weekly_jobs_at_once_run_one_after_the_other",)),
    Fault("two `churn register` at once (one MLflow store)",
          "both exit 0, each registers a version; registered.json is whole",
          (f"{KILLS}::test_two_registers_at_once",)),
    Fault("a full disk or a read-only output under `churn observe`, `features`, `train`, "
          "`evaluate`, `report`, `score --pipeline`, `weekly` and `backtest`",
          "each stops, exit 2, after its work, with the system's error (“cannot write "
          "data/.observations.lock: Read-only file system”, “… No space left on device”) and "
          "“Free some space [or fix the permissions]; the previous outputs are unchanged”; "
          "every previous output stays whole, no temp folder is left",
          tuple(f"{FAULTS_TESTS}::test_a_full_or_read_only_disk_{t}[{f}]"
                for t in ("ends_every_command_in_a_message", "leaves_the_previous_outputs")
                for f in ("ro", "full"))),
    Fault("an unreachable tracking server under `churn weekly`, `score` and `backtest`",
          "each stops in seconds, exit 2, naming the URI and the local store, before any work "
          "(`weekly` ingests nothing)",
          (f"{FAULTS_TESTS}::test_an_unreachable_server_stops_weekly_score_and_backtest_before_any_work",)),
    Fault("a tracking server failing its API (503) when `churn weekly` or `score` fetch the "
          "champion",
          "stops within 60 s (about 5 s), exit 2, naming the server and the local store; "
          "nothing of the week is written",
          (f"{FAULTS_TESTS}::test_a_server_failing_its_api_stops_weekly_and_score_in_bounded_time",)),
    Fault("a tracking server failing its API (503) after the output is written: `churn score` "
          "(a model folder), `report --track`, `backtest`",
          "exit 2 within 60 s naming the server; each says the output is written and not "
          "logged; the output is the new run, whole",
          (f"{FAULTS_TESTS}::test_a_server_failing_its_api_after_the_outputs_are_written",
           f"{FAULTS_TESTS}::test_a_server_failing_its_api_stops_the_backtest_after_writing_it",
           f"{FAULTS_TESTS}::test_the_backtest_says_it_is_written_but_not_logged")),
    Fault("an output folder holding files the product did not write",
          "never replaced: the command stops naming the folder (or the files) before any work",
          ("tests/pipeline/test_artifacts.py::test_a_folder_it_did_not_write_is_never_replaced",
           "tests/pipeline/test_artifacts.py::test_files_added_to_an_output_are_never_lost",
           "tests/pipeline/test_user_mistakes.py::test_simulate_never_deletes_a_folder_it_did_not_write")),
]

NOT_PROVEN: list[str] = []

HEADER = f"""# Reliability: bad input and faults

Generated from the tests by `{bad.REGENERATE}`;
do not edit by hand (`{BAD}::test_reliability_page_is_current` fails when this page is stale).

What `churn ingest` does with each way an export can be broken, and what the commands do when
the machine fails under them, each with the test that proves it. In every case that ingests,
rows in = kept + quarantined for every table (ingest checks it before reporting; the tests
check the manifest and the files); a case that stops exits with code 2 and a message naming
the file and what to change, writes nothing and leaves the previous outputs as they were.

The cases of `{BAD}` run `churn ingest` as a user does, on an export of a few rows per table
(`data.as_of: 2024-03-01` and `data.max_bad_share: 1.0` unless the case says otherwise: with
the default 0.05, one bad row among a few is a broken export). A quarantined row's `line`
counts the header as line 1 (Parquet: the row's index + 1). What each quarantine rule means:
[contract.md](contract.md). Cases where the product misbehaves today are not described as
what it does: they are under [Known gaps](#known-gaps), each a strict xfail test, which fails
once the product is fixed (then the case moves up here).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _tests(refs: tuple[str, ...]) -> str:
    return "<br>".join(f"`{ref}`" for ref in refs)


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def cited_tests() -> list[str]:
    refs = [c.test_id for c in bad.CASES]
    refs += [t for row in COVERED for t in row.tests]
    refs += [t for f in FAULTS for t in (*f.tests, *f.gap_tests)]
    return refs


def render() -> str:
    cases = [c for c in bad.CASES if not c.gap]
    gaps = [c for c in bad.CASES if c.gap]
    out = [HEADER]
    out.append(f"## Bad input ({len(cases) + len(COVERED)} cases)\n")
    for group in GROUPS:
        out.append(f"### {group}\n")
        out.append(_row("case", "how the export is broken", "what the product does", "test"))
        out.append("|---|---|---|---|")
        for c in cases:
            if c.group == group:
                out.append(_row(c.case, c.broken, c.does(), _tests((c.test_id,))))
        for row in COVERED:
            if row.group == group:
                out.append(_row(row.case, row.broken, row.does, _tests(row.tests)))
        out.append("")
    out.append(f"## Faults ({len(FAULTS)})\n")
    out.append(_row("fault", "what the product does", "test"))
    out.append("|---|---|---|")
    for f in FAULTS:
        out.append(_row(f.fault, f.does, _tests(f.tests)))
    out.append("")
    fault_gaps = [f for f in FAULTS if f.gap]
    out.append(f"## Known gaps ({len(gaps) + len(fault_gaps)})\n")
    if not gaps and not fault_gaps:
        out.append("None: the product does what the tables above say in every case listed.\n")
    else:
        out.append("The product misbehaves in these cases today. Each test asserts what it "
                   "should do and is marked `xfail(strict=True)` with the finding.\n")
        out.append(_row("case", "how the export is broken", "what happens today",
                        "what the test expects", "test"))
        out.append("|---|---|---|---|---|")
        for c in gaps:
            out.append(_row(c.case, c.broken, c.gap, c.expect.text(), _tests((c.test_id,))))
        for f in fault_gaps:
            out.append(_row(f.fault, "—", f.gap, f.expects, _tests(f.gap_tests)))
        out.append("")
    out.append("## Not yet proven by a test\n")
    out.extend(f"- {line}" for line in NOT_PROVEN)
    if not NOT_PROVEN:
        out.append("None: every case and fault above names the test that proves it.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
