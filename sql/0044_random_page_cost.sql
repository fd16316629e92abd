-- 0044_random_page_cost: the planner prices a page read at random as what
-- it costs here, not what it cost on a spinning disk (issues 3 and 5:
-- request latency).
--
-- PostgreSQL's default random_page_cost is 4: a page fetched through an
-- index is taken to cost four sequential ones. dealercrm's working set is
-- in memory or on SSD, where the two cost about the same. Under 4 the
-- planner read the small tables every request touches by scanning them
-- whole: the session's user among all 141 users of the ops/bench group
-- (a hash join, 35 us), each users foreign-key check of a write (10 us,
-- three in a follow-up), the stores and users behind task_view,
-- followup_view and relation_view (42, 31 and 22 us by id).
--
-- Under 1.1, pgbench running a follow-up with its next task, one client,
-- pg_stat_statements: session_begin 99 -> 58 us, its user look-up 35 -> 12,
-- a users foreign-key check 10 -> 2.1, task_view by id 42 -> 13, followup_view
-- 31 -> 17, relation_view 22 -> 11. Through crmd, 16 clients, 12 s runs
-- alternating: 875, 854, 750 and 850 follow-ups a second against 770, 664,
-- 789 and 764 under 4. The plans of the name, phone, filter and tasks lists
-- are the same under both (auto_explain): only the look-ups of users,
-- stores and sessions changed.
--
-- Set on the database, so that every connection to it plans this way,
-- whatever the cluster's own setting; a new connection takes it.

DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET random_page_cost = 1.1', current_database());
END
$$;
