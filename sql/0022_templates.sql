-- 0022_templates: message templates with placeholders, messages sent
-- through crmd's sender as follow-ups, and the follow-up compliance report
-- (issue 5; DESIGN.md "Domain": message templates; "Analytics": follow-up
-- compliance).
--
-- Conventions are those of 0001 (one function call per statement, SQLSTATE
-- class DC for people, timestamps leave as unix milliseconds).
--
-- * crm.message_templates: group-wide templates (store_id NULL; group
--   admins write them) and a store's own (its store manager writes them).
--   The body's placeholders are checked and filled by crmd
--   (server/h_template.c, the one implementation); here only lengths and
--   the channel. Every write appends the template to the outbox, encoded
--   here (crm.template_payload), like crm.task_payload.
-- * Rendering reads what the placeholders need in one call
--   (crm.template_context), as the caller may see it: a consultant only for
--   the relations they own and the store pool's.
-- * Sending (crm.template_send) records the message as a follow-up of the
--   template's channel through crm.followup_add (so the cadence policy,
--   the relation's last contact and the outbox work as for any follow-up),
--   reads the recipient's real address through crm.message_recipient
--   (audited like a reveal) and notes the send in crm.template_sends, all
--   in one transaction. crmd hands the message to its sender only after
--   that committed, with the follow-up id as the message's name, and then
--   marks it spooled (crm.template_spooled): a retry of the same follow-up
--   id records nothing and hands nothing over again once it is marked.
--   crm.template_sends is this node's delivery state and does not travel
--   by sync (the hub must not send a store's messages again); the
--   follow-up it belongs to does.
-- * crm.compliance_report: per store and owner, the tasks due in a period
--   done on time, late (average and longest lateness), missed and open,
--   judged by 0013's crm.task_outcome at a given time. It reads crm.tasks
--   itself, so it counts every task whichever function made it (a follow-up,
--   the cadence policy, a level change, later migrations' writers).

-- ------------------------------------------------------------ tables

CREATE TABLE crm.message_templates (
    id uuid PRIMARY KEY,                        -- UUIDv7 chosen by the client
    store_id uuid REFERENCES crm.stores (id),   -- NULL: group-wide
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    channel text NOT NULL CHECK (channel IN ('sms', 'wechat', 'email')),
    body text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 1000),
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL,
    created_by uuid NOT NULL REFERENCES crm.users (id),
    updated_at timestamptz NOT NULL,
    updated_by uuid NOT NULL REFERENCES crm.users (id)
);
-- Names are unique in their scope (group-wide, or one store).
CREATE UNIQUE INDEX message_templates_scope_name ON crm.message_templates
    (coalesce(store_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name));

-- One row per message sent from a template: the follow-up that records it
-- (inserted before that follow-up in the same transaction, hence the
-- deferred key) and when crmd's sender took it.
CREATE TABLE crm.template_sends (
    followup_id uuid PRIMARY KEY
        REFERENCES crm.followups (id) DEFERRABLE INITIALLY DEFERRED,
    relation_id uuid NOT NULL REFERENCES crm.relations (id),
    store_id uuid NOT NULL REFERENCES crm.stores (id),
    template_id uuid NOT NULL REFERENCES crm.message_templates (id),
    template_version bigint NOT NULL,
    channel text NOT NULL CHECK (channel IN ('sms', 'wechat', 'email')),
    sender text NOT NULL CHECK (char_length(sender) BETWEEN 1 AND 32),
    created_at timestamptz NOT NULL,
    spooled_at timestamptz
);
CREATE INDEX template_sends_unspooled ON crm.template_sends (created_at)
    WHERE spooled_at IS NULL;

-- The TEMPLATE columns of server/stmts.h, in order, then store_id.
CREATE VIEW crm.template_view WITH (security_invoker = true) AS
SELECT t.id, coalesce(s.code, '') AS store_code, t.name, t.channel, t.body, t.version,
       t.active, crm.ms(t.created_at) AS created_at_ms, crm.ms(t.updated_at) AS updated_at_ms,
       u.username AS updated_by, t.store_id
  FROM crm.message_templates t
  LEFT JOIN crm.stores s ON s.id = t.store_id
  JOIN crm.users u ON u.id = t.updated_by;

-- ------------------------------------------------------------ helpers

-- The outbox payload of a template: a packed crm.MessageTemplate without
-- the derived placeholders.
CREATE FUNCTION crm.template_payload(p_id uuid) RETURNS bytea
LANGUAGE sql STABLE
AS $$
    SELECT crm.pb_text(1, v.id::text) || crm.pb_text(2, v.store_code) || crm.pb_text(3, v.name)
        || crm.pb_text(4, v.channel) || crm.pb_text(5, v.body) || crm.pb_int(6, v.version)
        || crm.pb_int(7, CASE WHEN v.active THEN 1 ELSE 0 END)
        || crm.pb_int(8, v.created_at_ms) || crm.pb_int(9, v.updated_at_ms)
        || crm.pb_text(10, v.updated_by)
      FROM crm.template_view v
     WHERE v.id = p_id
$$;

-- Refuses a second template of the same name in the same scope, naming
-- the one that has it.
CREATE FUNCTION crm.template_name_free(p_store_id uuid, p_name text, p_except uuid)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_other uuid;
BEGIN
    SELECT t.id INTO v_other FROM crm.message_templates t
     WHERE coalesce(t.store_id, '00000000-0000-0000-0000-000000000000'::uuid)
           = coalesce(p_store_id, '00000000-0000-0000-0000-000000000000'::uuid)
       AND lower(t.name) = lower(p_name) AND t.id IS DISTINCT FROM p_except;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC410', COLUMN = 'template.name',
            MESSAGE = format('template.name: a template named "%s" exists already (%s)',
                             p_name, v_other);
    END IF;
END
$$;

-- ------------------------------------------------------------ templates

-- STMT_TEMPLATE_SAVE: p_version 0 creates the template in the caller's
-- scope (group admins group-wide, store managers their store); the same id
-- again answers 'existed' and writes nothing. Otherwise sets the fields
-- given (NULL: keep) if p_version is current, else 'stale' and the
-- template as it is. Outcome, then TEMPLATE columns.
CREATE FUNCTION crm.template_save(p_session_id uuid, p_id text, p_version bigint, p_name text,
                                  p_channel text, p_body text, p_active boolean,
                                  p_at_ms bigint)
RETURNS TABLE (outcome text, tpl crm.template_view)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_at timestamptz;
    t crm.message_templates;
    v_name text := btrim(p_name, E' \t\r\n\u3000');
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role NOT IN ('group_admin', 'store_manager') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'only group admins (group-wide templates) and store managers (their'
                      ' store''s) write message templates';
    END IF;
    IF p_at_ms IS NULL OR p_version IS NULL OR p_version < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'version',
            MESSAGE = 'version and write time are required';
    END IF;
    v_at := crm.from_ms(p_at_ms);
    IF p_name IS NOT NULL AND char_length(coalesce(v_name, '')) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'template.name',
            MESSAGE = 'template.name is required (at most 100 characters)';
    END IF;
    IF p_channel IS NOT NULL AND p_channel NOT IN ('sms', 'wechat', 'email') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'template.channel',
            MESSAGE = 'template.channel must be sms, wechat or email';
    END IF;
    IF p_body IS NOT NULL AND char_length(p_body) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'template.body',
            MESSAGE = 'template.body is required (at most 1000 characters)';
    END IF;

    IF p_version = 0 THEN
        v_id := crm.check_uuid(p_id, 'template.id', true);
        IF EXISTS (SELECT 1 FROM crm.template_view v WHERE v.id = v_id) THEN
            RETURN QUERY SELECT 'existed', v FROM crm.template_view v WHERE v.id = v_id;
            RETURN;
        END IF;
        IF p_name IS NULL OR p_channel IS NULL OR p_body IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400',
                COLUMN = CASE WHEN p_name IS NULL THEN 'template.name'
                              WHEN p_channel IS NULL THEN 'template.channel'
                              ELSE 'template.body' END,
                MESSAGE = 'a new template needs a name, a channel and a body';
        END IF;
        PERFORM crm.template_name_free(me.store_id, v_name, NULL);
        INSERT INTO crm.message_templates (id, store_id, name, channel, body, active,
                                           created_at, created_by, updated_at, updated_by)
        VALUES (v_id, me.store_id, v_name, p_channel, p_body, coalesce(p_active, true),
                v_at, me.user_id, v_at, me.user_id);
    ELSE
        v_id := crm.check_uuid(p_id, 'id');
        -- Read, then lock: a row lock needs the UPDATE policy too, and a
        -- template the caller may read but not change is a 403, not a 404.
        SELECT x.* INTO t FROM crm.message_templates x WHERE x.id = v_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
                MESSAGE = format('no template %s you may use', p_id);
        END IF;
        IF t.store_id IS NULL AND me.role <> 'group_admin' THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'group-wide templates are changed by group admins only';
        END IF;
        IF t.store_id IS NOT NULL AND (me.role <> 'store_manager'
                                       OR t.store_id IS DISTINCT FROM me.store_id) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'a store''s templates are changed by its store manager only';
        END IF;
        SELECT x.* INTO t FROM crm.message_templates x WHERE x.id = v_id FOR NO KEY UPDATE;
        IF t.version <> p_version THEN
            RETURN QUERY SELECT 'stale', v FROM crm.template_view v WHERE v.id = v_id;
            RETURN;
        END IF;
        IF p_name IS NOT NULL THEN
            PERFORM crm.template_name_free(t.store_id, v_name, v_id);
        END IF;
        UPDATE crm.message_templates x
           SET name = coalesce(v_name, x.name), channel = coalesce(p_channel, x.channel),
               body = coalesce(p_body, x.body), active = coalesce(p_active, x.active),
               version = x.version + 1, updated_at = v_at, updated_by = me.user_id
         WHERE x.id = v_id;
    END IF;
    PERFORM crm.outbox_append('template', v_id, crm.template_payload(v_id));
    RETURN QUERY SELECT 'ok', v FROM crm.template_view v WHERE v.id = v_id;
END
$$;

-- STMT_TEMPLATE_LIST: TEMPLATE columns of the templates the caller may
-- use (row-level security: group-wide ones and their store's; group roles
-- all), group-wide first, by name. p_id: that one only (inactive or not;
-- DC404 when the caller has none such).
CREATE FUNCTION crm.template_list(p_session_id uuid, p_id text, p_include_inactive boolean,
                                  p_channel text)
RETURNS SETOF crm.template_view
LANGUAGE plpgsql
AS $$
DECLARE
    me record;
    v_id uuid;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node reads no templates';
    END IF;
    IF coalesce(p_id, '') <> '' THEN
        v_id := crm.check_uuid(p_id, 'id');
        RETURN QUERY SELECT v.* FROM crm.template_view v WHERE v.id = v_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'id',
                MESSAGE = format('no template %s you may use', p_id);
        END IF;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT v.* FROM crm.template_view v
     WHERE (coalesce(p_include_inactive, false) OR v.active)
       AND (coalesce(p_channel, '') = '' OR v.channel = p_channel)
     ORDER BY v.store_code, lower(v.name), v.id
     LIMIT 1000;
END
$$;

-- STMT_TEMPLATE_CONTEXT: what the placeholders of template p_template_id
-- need, for a relation the caller may read: the caller's store's relation
-- to customer p_customer_id, or relation p_relation_id (group roles name
-- one). TEMPLATE columns, then customer_id, relation_id, customer_name,
-- consultant (the owner's display name; NULL for the store pool),
-- store_name, first_model (NULL when none), and the day of p_date_ms (else
-- of the relation's next open task; NULL when neither) in the group's time
-- zone: date_year, date_month, date_day.
CREATE FUNCTION crm.template_context(p_session_id uuid, p_template_id text, p_customer_id text,
                                     p_relation_id text, p_date_ms bigint)
RETURNS TABLE (tpl crm.template_view, customer_id uuid, relation_id uuid, customer_name text,
               consultant text, store_name text, first_model text, date_year integer,
               date_month integer, date_day integer)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v crm.template_view;
    r crm.relations;
    v_tpl uuid;
    v_cust uuid;
    v_name text;
    v_erased timestamptz;
    v_at timestamptz;
    v_local timestamp;
    v_zone text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node sends no messages';
    END IF;
    v_tpl := crm.check_uuid(p_template_id, 'template_id');
    SELECT x.* INTO v FROM crm.template_view x WHERE x.id = v_tpl;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'template_id',
            MESSAGE = format('no template %s you may use', p_template_id);
    END IF;
    IF NOT v.active THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'template_id',
            MESSAGE = format('template "%s" is inactive: a manager activates it first', v.name);
    END IF;
    IF coalesce(p_customer_id, '') <> '' THEN
        v_cust := crm.check_uuid(p_customer_id, 'customer_id');
    END IF;

    IF coalesce(p_relation_id, '') <> '' THEN
        r := crm.relation_row(crm.check_uuid(p_relation_id, 'relation_id'), false);
        IF r.id IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'relation_id',
                MESSAGE = 'no such relation';
        END IF;
        IF v_cust IS NOT NULL AND r.customer_id <> v_cust THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation_id',
                MESSAGE = 'relation_id is a relation of another customer';
        END IF;
    ELSIF v_cust IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'customer_id',
            MESSAGE = 'customer_id (or relation_id) is required';
    ELSIF NOT crm.customer_exists(v_cust) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC404', COLUMN = 'customer_id',
            MESSAGE = 'no such customer';
    ELSIF me.store_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'relation_id',
            MESSAGE = 'group roles name the store relation to message (relation_id)';
    ELSE
        r := crm.relation_row((SELECT x.id FROM crm.relations x
                                WHERE x.customer_id = v_cust AND x.store_id = me.store_id),
                              false);
    END IF;
    -- A consultant reads the relations they own and the pool's; other store
    -- roles their store's; group roles any (crm.readable_relations' rule).
    IF r.id IS NULL OR (me.store_id IS NOT NULL
                        AND (r.store_id <> me.store_id
                             OR (me.role = 'consultant' AND r.owner_id IS NOT NULL
                                 AND r.owner_id <> me.user_id))) THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403',
            MESSAGE = 'this customer has no relation you may message at your store';
    END IF;
    IF v.store_id IS NOT NULL AND v.store_id <> r.store_id THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'template_id',
            MESSAGE = format('template "%s" is store %s''s: it is for that store''s customers',
                             v.name, v.store_code);
    END IF;
    SELECT c.name, c.erased_at INTO v_name, v_erased FROM crm.customers c WHERE c.id = r.customer_id;
    IF v_erased IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'customer_id',
            MESSAGE = 'this customer was erased on request: no message goes to them';
    END IF;
    v_at := CASE WHEN coalesce(p_date_ms, 0) <> 0 THEN crm.from_ms(p_date_ms)
                 ELSE r.next_followup_at END;
    SELECT g.time_zone INTO v_zone FROM crm.group_policy g;
    v_local := v_at AT TIME ZONE v_zone;
    RETURN QUERY
    SELECT v, r.customer_id, r.id, v_name,
           (SELECT u.display_name FROM crm.users u WHERE u.id = r.owner_id),
           (SELECT s.name FROM crm.stores s WHERE s.id = r.store_id),
           (SELECT i.model FROM crm.relation_intents i WHERE i.relation_id = r.id
             ORDER BY i.position LIMIT 1),
           extract(year FROM v_local)::integer, extract(month FROM v_local)::integer,
           extract(day FROM v_local)::integer;
END
$$;

-- ------------------------------------------------------------ sending

-- The customer's real address for a message on p_channel: for sms the
-- primary phone when it is a mobile, else the first mobile; for wechat the
-- WeChat ID; for email the address. The sender is the one place that needs
-- it unmasked, so every read is audited like a reveal ('message.recipient',
-- in the caller's transaction). DC400 (recipient) when there is none.
CREATE FUNCTION crm.message_recipient(p_customer_id uuid, p_channel text, p_followup_id uuid,
                                      p_template_id uuid)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_to text;
BEGIN
    IF p_channel = 'sms' THEN
        SELECT p.phone INTO v_to FROM crm.customer_phones p
         WHERE p.customer_id = p_customer_id AND p.kind = 'mobile'
         ORDER BY p.is_primary DESC, p.added_at, p.phone LIMIT 1;
    ELSIF p_channel = 'wechat' THEN
        SELECT nullif(c.wechat, '') INTO v_to FROM crm.customers c WHERE c.id = p_customer_id;
    ELSIF p_channel = 'email' THEN
        SELECT nullif(c.email, '') INTO v_to FROM crm.customers c WHERE c.id = p_customer_id;
    END IF;
    IF v_to IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'recipient',
            MESSAGE = format('the customer has no %s to send to',
                             CASE p_channel WHEN 'sms' THEN 'mobile phone'
                                            WHEN 'wechat' THEN 'WeChat ID'
                                            ELSE 'email address' END);
    END IF;
    PERFORM crm.audit_append('message.recipient', p_entity => 'customer',
        p_entity_id => p_customer_id::text, p_customer_id => p_customer_id,
        p_reason => 'message from a template',
        p_details => jsonb_build_object('channel', p_channel, 'followup_id', p_followup_id,
                                        'template_id', p_template_id,
                                        'fields', jsonb_build_array(
                                            CASE p_channel WHEN 'sms' THEN 'phones'
                                                           ELSE p_channel END)));
    RETURN v_to;
END
$$;

-- STMT_TEMPLATE_SEND: records a message from template p_template_id (at
-- p_template_version, with channel p_channel, rendered by crmd into
-- p_content) as a follow-up on the relation, through crm.followup_add
-- (the follow-up's method being the channel, its bundle p_payloads),
-- notes it in crm.template_sends and reads the recipient (audited). Rows as
-- STMT_FOLLOWUP_ADD, then recipient and spooled on each. A follow-up id
-- that exists (a retry) answers 'existed', records nothing, and gives the
-- recipient and whether the message was spooled already; DC409 when the
-- template changed since crmd rendered it.
CREATE FUNCTION crm.template_send(
    p_session_id uuid, p_id text, p_relation_id text, p_task_id text, p_channel text,
    p_type text, p_at_ms bigint, p_content text, p_write_at_ms bigint, p_version bigint,
    p_expect_next_ms bigint, p_template_id text, p_template_version bigint, p_sender text,
    p_payloads bytea)
RETURNS TABLE (outcome text, kind text, fu crm.followup_view, rel crm.relation_view,
               task crm.task_view, recipient text, spooled boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_id uuid;
    v_tpl uuid;
    v_rel uuid;
    s crm.template_sends;
    t crm.message_templates;
    r crm.relations;
    v_to text;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    v_id := crm.check_uuid(p_id, 'followup_id', true);
    v_tpl := crm.check_uuid(p_template_id, 'template_id');
    IF p_type IS NULL OR p_type NOT IN ('care', 'invitation') THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'type',
            MESSAGE = 'type must be care or invitation';
    END IF;
    IF EXISTS (SELECT 1 FROM crm.followups f WHERE f.id = v_id) THEN
        SELECT x.* INTO s FROM crm.template_sends x WHERE x.followup_id = v_id;
        IF NOT FOUND OR s.template_id <> v_tpl THEN
            RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'followup_id',
                MESSAGE = 'followup_id belongs to another follow-up; choose a new id';
        END IF;
        r := crm.followup_relation(s.relation_id::text, '', false);
        PERFORM crm.relation_check_access(r, me.user_id, me.role, me.store_id, true);
        v_to := crm.message_recipient(r.customer_id, s.channel, v_id, v_tpl);
        RETURN QUERY
        SELECT 'existed', 'followup', f, v, NULL::crm.task_view, v_to, s.spooled_at IS NOT NULL
          FROM crm.followup_view f JOIN crm.relation_view v ON v.id = f.relation_id
         WHERE f.id = v_id;
        RETURN;
    END IF;
    -- Not locked: FOR SHARE would need the template's UPDATE policy, which
    -- only its writers pass. A change committed after this check came
    -- after the message.
    SELECT x.* INTO t FROM crm.message_templates x WHERE x.id = v_tpl;
    IF NOT FOUND OR t.version <> p_template_version OR t.channel <> p_channel OR NOT t.active THEN
        RAISE EXCEPTION USING ERRCODE = 'DC409', COLUMN = 'template_id',
            MESSAGE = 'the template changed while the message was prepared; try again';
    END IF;
    v_rel := crm.check_uuid(p_relation_id, 'relation_id');
    r := crm.followup_relation(v_rel::text, '', false);
    PERFORM crm.relation_check_access(r, me.user_id, me.role, me.store_id, true);
    -- The recipient first: a customer without one gets no follow-up either.
    v_to := crm.message_recipient(r.customer_id, p_channel, v_id, v_tpl);
    INSERT INTO crm.template_sends (followup_id, relation_id, store_id, template_id,
                                    template_version, channel, sender, created_at)
    VALUES (v_id, r.id, r.store_id, v_tpl, t.version, p_channel, p_sender,
            crm.from_ms(p_write_at_ms));
    RETURN QUERY
    SELECT x.outcome, x.kind, x.fu, x.rel, x.task, v_to, false
      FROM crm.followup_add(p_session_id, p_id, v_rel::text, coalesce(p_task_id, ''), p_channel,
                            p_type, p_at_ms, p_content, '', NULL, '', '', p_write_at_ms,
                            p_version, p_expect_next_ms, p_payloads) x;
END
$$;

-- STMT_TEMPLATE_SPOOLED: crmd's sender took the message of follow-up
-- p_followup_id. Nothing when it was marked before.
CREATE FUNCTION crm.template_spooled(p_session_id uuid, p_followup_id text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM crm.session_begin(p_session_id);
    UPDATE crm.template_sends s SET spooled_at = now()
     WHERE s.followup_id = crm.check_uuid(p_followup_id, 'followup_id')
       AND s.spooled_at IS NULL;
END
$$;

-- ------------------------------------------------------------ compliance

-- STMT_COMPLIANCE: the tasks due in [p_since_ms, p_until_ms), per store and
-- owner: store_code, owner ("" the pool), owner_name, tasks, on_time, late,
-- missed, still_open, late_avg_ms, late_max_ms; outcomes by crm.task_outcome at
-- p_at_ms (0 now). Consultants, service advisors and call-center agents
-- report on their own tasks; sales and store managers on their store's
-- (p_owner: one person of it); group roles on any store or person, or all.
CREATE FUNCTION crm.compliance_report(p_session_id uuid, p_since_ms bigint, p_until_ms bigint,
                                      p_store_code text, p_owner text, p_at_ms bigint)
RETURNS TABLE (store_code text, owner text, owner_name text, tasks integer, on_time integer,
               late integer, missed integer, still_open integer, late_avg_ms bigint,
               late_max_ms bigint)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    me record;
    v_at timestamptz;
    v_store uuid;
    v_owner uuid;
    v_manager boolean;
BEGIN
    SELECT * INTO me FROM crm.session_begin(p_session_id);
    IF me.role = 'store_node' THEN
        RAISE EXCEPTION USING ERRCODE = 'DC403', MESSAGE = 'a store node has no tasks';
    END IF;
    IF coalesce(p_since_ms, 0) <= 0 OR coalesce(p_until_ms, 0) <= p_since_ms THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'until',
            MESSAGE = 'give the period: since and until in unix milliseconds, since before until';
    END IF;
    IF p_until_ms - p_since_ms > 366::bigint * 86400000 THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'until',
            MESSAGE = 'the period is at most 366 days';
    END IF;
    v_at := CASE WHEN coalesce(p_at_ms, 0) > 0 THEN crm.from_ms(p_at_ms) ELSE now() END;
    v_manager := me.role IN ('sales_manager', 'store_manager');
    IF coalesce(p_store_code, '') <> '' THEN
        SELECT s.id INTO v_store FROM crm.stores s WHERE s.code = upper(btrim(p_store_code));
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'store_code',
                MESSAGE = format('store_code: no store %s', p_store_code);
        END IF;
        IF me.store_id IS NOT NULL AND (v_store <> me.store_id OR NOT v_manager) THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'only managers report on a store, and only on their own';
        END IF;
    END IF;
    IF coalesce(p_owner, '') <> '' THEN
        SELECT u.id INTO v_owner FROM crm.users u
         WHERE u.username = lower(btrim(p_owner))
           AND (me.store_id IS NULL OR u.store_id = me.store_id);
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'DC400', COLUMN = 'owner',
                MESSAGE = format('owner: %s is not a user of your store', p_owner);
        END IF;
        IF v_owner <> me.user_id AND me.store_id IS NOT NULL AND NOT v_manager THEN
            RAISE EXCEPTION USING ERRCODE = 'DC403',
                MESSAGE = 'only managers report on another person''s tasks';
        END IF;
    ELSIF me.store_id IS NOT NULL AND NOT v_manager THEN
        v_owner := me.user_id;
    END IF;
    IF me.store_id IS NOT NULL THEN
        v_store := me.store_id;
    END IF;
    RETURN QUERY
    SELECT s.code::text, coalesce(u.username, ''), coalesce(u.display_name, ''),
           count(*)::integer,
           (count(*) FILTER (WHERE o.outcome = 'on_time'))::integer,
           (count(*) FILTER (WHERE o.outcome = 'late'))::integer,
           (count(*) FILTER (WHERE o.outcome = 'missed'))::integer,
           (count(*) FILTER (WHERE o.outcome = 'open'))::integer,
           coalesce(round(avg(o.late_by_ms) FILTER (WHERE o.outcome = 'late')), 0)::bigint,
           coalesce(max(o.late_by_ms) FILTER (WHERE o.outcome = 'late'), 0)::bigint
      FROM crm.tasks t
      JOIN crm.stores s ON s.id = t.store_id
      LEFT JOIN crm.users u ON u.id = t.owner_id
      CROSS JOIN LATERAL crm.task_outcome(t.status, t.due_at, t.closed_at, v_at) o
     WHERE t.due_at >= crm.from_ms(p_since_ms) AND t.due_at < crm.from_ms(p_until_ms)
       AND (v_store IS NULL OR t.store_id = v_store)
       AND (v_owner IS NULL OR t.owner_id = v_owner)
     GROUP BY s.code, u.username, u.display_name
     ORDER BY s.code, coalesce(u.username, '');
END
$$;

-- ------------------------------------------------------------ row-level security

-- Templates: group-wide ones are read by everyone and written by group
-- admins; a store's are read by its people and the group roles and written
-- by its store manager. Sends follow their relation, like follow-ups.
ALTER TABLE crm.message_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.message_templates FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.template_sends ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.template_sends FORCE ROW LEVEL SECURITY;

CREATE POLICY message_templates_read ON crm.message_templates FOR SELECT
    USING (crm.rls_group() OR store_id IS NULL OR store_id = crm.rls_store());
CREATE POLICY message_templates_insert ON crm.message_templates FOR INSERT
    WITH CHECK ((store_id IS NULL AND crm.rls_role() = 'group_admin')
                OR (store_id = crm.rls_store() AND crm.rls_role() = 'store_manager'));
CREATE POLICY message_templates_update ON crm.message_templates FOR UPDATE
    USING ((store_id IS NULL AND crm.rls_role() = 'group_admin')
           OR (store_id = crm.rls_store() AND crm.rls_role() = 'store_manager'))
    WITH CHECK ((store_id IS NULL AND crm.rls_role() = 'group_admin')
                OR (store_id = crm.rls_store() AND crm.rls_role() = 'store_manager'));

CREATE POLICY template_sends_read ON crm.template_sends FOR SELECT
    USING (crm.relation_visible(relation_id));
CREATE POLICY template_sends_insert ON crm.template_sends FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM crm.relations r WHERE r.id = relation_id
                          AND r.store_id = crm.rls_store()));
CREATE POLICY template_sends_update ON crm.template_sends FOR UPDATE
    USING (store_id = crm.rls_store())
    WITH CHECK (store_id = crm.rls_store());

-- ------------------------------------------------------------ grants

REVOKE ALL ON crm.message_templates, crm.template_sends, crm.template_view FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.template_payload(uuid), crm.template_name_free(uuid, text, uuid),
    crm.template_save(uuid, text, bigint, text, text, text, boolean, bigint),
    crm.template_list(uuid, text, boolean, text),
    crm.template_context(uuid, text, text, text, bigint),
    crm.message_recipient(uuid, text, uuid, uuid),
    crm.template_send(uuid, text, text, text, text, text, bigint, text, bigint, bigint, bigint,
                      text, bigint, text, bytea),
    crm.template_spooled(uuid, text),
    crm.compliance_report(uuid, bigint, bigint, text, text, bigint) FROM PUBLIC;

DO $$
DECLARE
    app text := current_setting('crm.app_user', true);
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'crm.app_user is not set: apply migrations with crmctl migrate';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION crm.template_payload(uuid),'
                   ' crm.template_name_free(uuid, text, uuid),'
                   ' crm.template_save(uuid, text, bigint, text, text, text, boolean, bigint),'
                   ' crm.template_list(uuid, text, boolean, text),'
                   ' crm.template_context(uuid, text, text, text, bigint),'
                   ' crm.message_recipient(uuid, text, uuid, uuid),'
                   ' crm.template_send(uuid, text, text, text, text, text, bigint, text, bigint,'
                   '   bigint, bigint, text, bigint, text, bytea),'
                   ' crm.template_spooled(uuid, text),'
                   ' crm.compliance_report(uuid, bigint, bigint, text, text, bigint) TO %I', app);
    -- Templates are never deleted (deactivate them); sends are marked
    -- spooled, never removed.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON crm.message_templates, crm.template_sends'
                   ' TO %I', app);
    EXECUTE format('GRANT SELECT ON crm.template_view TO %I', app);
END
$$;
