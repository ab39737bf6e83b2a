extension Schema {
    /// A SQL expression for the events table's position sequence (a `regclass`), given the
    /// table's quoted name as `$1`: the one `global_position`'s default draws from, whether the
    /// table owns it (BIGSERIAL) or not (eventsalsa/store's partitioned table, whose default is
    /// `nextval()` of a sequence it does not own: a default depends on its sequence).
    public static let positionSequenceExpression = """
        coalesce(
            pg_get_serial_sequence($1, 'global_position')::regclass,
            (SELECT d.refobjid::regclass FROM pg_attrdef ad
             JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum AND a.attname = 'global_position'
             JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                AND d.refclassid = 'pg_class'::regclass
             JOIN pg_class c ON c.oid = d.refobjid AND c.relkind = 'S'
             WHERE ad.adrelid = $1::regclass LIMIT 1))
        """
}
