-- 0023_change_subjects: the 'change' audit entry of every record kind
-- names the customer and the store it concerns, and its versions where the
-- record has one (issue 4's audit, for the records of issues 5 and 6).
--
-- crm.outbox_append (0011) looked these up for customers and relations
-- only: a follow-up, a task, an order or a complaint was audited without
-- its customer, so `crm audit --customer` left them out and a store
-- manager's `crm audit` did not list them. The record kinds of 0013 and
-- 0017 to 0022 are looked up here, each by its own key (one index probe);
-- a kind without a customer (an organization, a template) keeps its store.

CREATE OR REPLACE FUNCTION crm.outbox_append(p_entity text, p_entity_id uuid, p_payload bytea,
                                             p_schema_version integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = crm, pg_temp
AS $$
DECLARE
    v_seq bigint;
    v_hlc bigint;
    v_version bigint;
    v_customer uuid;
    v_store uuid;
    v_relation uuid;
BEGIN
    IF p_entity IS NULL OR p_entity_id IS NULL OR p_payload IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'DC400',
            MESSAGE = 'outbox change needs an entity, an id and a payload';
    END IF;
    UPDATE crm.outbox_counter
       SET seq = seq + 1,
           hlc = greatest(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16,
                          hlc + 1)
     WHERE singleton
    RETURNING seq, hlc INTO v_seq, v_hlc;
    INSERT INTO crm.outbox (seq, entity, entity_id, payload, schema_version, hlc)
    VALUES (v_seq, p_entity, p_entity_id, p_payload, p_schema_version, v_hlc);

    CASE p_entity
    WHEN 'customer' THEN
        SELECT c.version, c.id INTO v_version, v_customer
          FROM crm.customers c WHERE c.id = p_entity_id;
    WHEN 'relation' THEN
        SELECT r.version, r.customer_id, r.store_id INTO v_version, v_customer, v_store
          FROM crm.relations r WHERE r.id = p_entity_id;
    WHEN 'followup' THEN
        SELECT x.relation_id, x.store_id INTO v_relation, v_store
          FROM crm.followups x WHERE x.id = p_entity_id;
    WHEN 'task' THEN
        SELECT x.relation_id, x.store_id, x.version INTO v_relation, v_store, v_version
          FROM crm.tasks x WHERE x.id = p_entity_id;
    WHEN 'attachment' THEN
        SELECT x.relation_id, x.store_id INTO v_relation, v_store
          FROM crm.attachments x WHERE x.id = p_entity_id;
    WHEN 'opportunity' THEN
        SELECT x.relation_id, x.store_id, x.version INTO v_relation, v_store, v_version
          FROM crm.opportunities x WHERE x.id = p_entity_id;
    WHEN 'order' THEN
        SELECT x.relation_id, x.store_id, x.version INTO v_relation, v_store, v_version
          FROM crm.orders x WHERE x.id = p_entity_id;
    WHEN 'test_drive' THEN
        SELECT x.relation_id, x.store_id INTO v_relation, v_store
          FROM crm.test_drives x WHERE x.id = p_entity_id;
    WHEN 'vehicle' THEN
        SELECT x.customer_id, x.store_id, x.version INTO v_customer, v_store, v_version
          FROM crm.vehicles x WHERE x.id = p_entity_id;
    WHEN 'service_visit' THEN
        SELECT x.customer_id, x.store_id INTO v_customer, v_store
          FROM crm.service_visits x WHERE x.id = p_entity_id;
    WHEN 'referral' THEN
        SELECT x.referred_id, x.store_id, x.version INTO v_customer, v_store, v_version
          FROM crm.referrals x WHERE x.id = p_entity_id;
    WHEN 'survey' THEN
        SELECT x.customer_id, x.store_id INTO v_customer, v_store
          FROM crm.surveys x WHERE x.id = p_entity_id;
    WHEN 'complaint' THEN
        SELECT x.customer_id, x.store_id, x.version INTO v_customer, v_store, v_version
          FROM crm.complaints x WHERE x.id = p_entity_id;
    WHEN 'organization' THEN
        SELECT x.store_id, x.version INTO v_store, v_version
          FROM crm.organizations x WHERE x.id = p_entity_id;
    WHEN 'template' THEN
        SELECT x.store_id, x.version INTO v_store, v_version
          FROM crm.message_templates x WHERE x.id = p_entity_id;
    ELSE
        NULL;  -- a kind this function does not know: audited without a subject
    END CASE;
    IF v_customer IS NULL AND v_relation IS NOT NULL THEN
        SELECT r.customer_id INTO v_customer FROM crm.relations r WHERE r.id = v_relation;
    END IF;
    PERFORM crm.audit_append('change', p_entity => p_entity,
        p_entity_id => p_entity_id::text, p_customer_id => v_customer,
        p_before_version => v_version - 1, p_after_version => v_version,
        p_details => jsonb_build_object('outbox_seq', v_seq),
        p_store_id => v_store);
    RETURN v_seq;
END
$$;
