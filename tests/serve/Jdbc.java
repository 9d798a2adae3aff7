// pgjdbc (Debian's libpostgresql-jdbc-java: the driver Metabase and DBeaver use) against
// `runql serve`, for tests/runql/serve.rs: java -cp .:postgresql.jar Jdbc URL USER PASSWORD
// Prints what DatabaseMetaData (the calls Metabase's sync and DBeaver's navigator make) and
// a PreparedStatement return, one fact per line: `what<TAB>value<TAB>...`.
import java.sql.*;
import java.util.*;

public class Jdbc {
    static void print(String what, Object... values) {
        StringBuilder b = new StringBuilder(what);
        for (Object v : values) b.append('\t').append(v);
        System.out.println(b);
    }

    static int count(ResultSet rs) throws SQLException {
        int n = 0;
        while (rs.next()) n++;
        return n;
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            DatabaseMetaData md = c.getMetaData();
            print("product", md.getDatabaseProductName(), md.getDatabaseProductVersion());
            print("readonly", c.isReadOnly());
            try (ResultSet rs = md.getCatalogs()) {
                while (rs.next()) print("catalog", rs.getString("TABLE_CAT"));
            }
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) print("schema", rs.getString("TABLE_SCHEM"));
            }
            try (ResultSet rs = md.getTableTypes()) {
                while (rs.next()) print("tabletype", rs.getString(1));
            }
            try (ResultSet rs = md.getTables(null, null, "%", new String[] {"TABLE", "VIEW"})) {
                while (rs.next())
                    print("table", rs.getString("TABLE_SCHEM"), rs.getString("TABLE_NAME"),
                          rs.getString("TABLE_TYPE"), rs.getString("REMARKS"));
            }
            try (ResultSet rs = md.getColumns(null, "zenml", "runs", "%")) {
                while (rs.next())
                    print("column", rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"),
                          rs.getInt("DATA_TYPE"), rs.getInt("ORDINAL_POSITION"), rs.getString("REMARKS"));
            }
            try (ResultSet rs = md.getPrimaryKeys(null, "zenml", "runs")) {
                print("primarykeys", count(rs));
            }
            try (ResultSet rs = md.getImportedKeys(null, "zenml", "steps")) {
                print("importedkeys", count(rs));
            }
            try (ResultSet rs = md.getIndexInfo(null, "zenml", "runs", false, true)) {
                print("indexes", count(rs));
            }
            try (ResultSet rs = md.getTypeInfo()) {
                print("typeinfo", count(rs));
            }
            try (ResultSet rs = md.getFunctions(null, "zenml", "%")) {
                while (rs.next()) print("function", rs.getString("FUNCTION_NAME"));
            }
            try (ResultSet rs = md.getTablePrivileges(null, "zenml", "runs")) {
                while (rs.next()) print("privilege", rs.getString("PRIVILEGE"));
            }
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT run_name, status, start_time, duration_s, tags, is_cached FROM runs "
                    + "WHERE pipeline_name = ? AND start_time >= ? ORDER BY start_time")) {
                ps.setString(1, "first_pipeline");
                ps.setTimestamp(2, Timestamp.valueOf("2000-01-01 00:00:00"));
                for (int round = 0; round < 2; round++) {
                    try (ResultSet rs = ps.executeQuery()) {
                        ResultSetMetaData rmd = rs.getMetaData();
                        List<String> types = new ArrayList<>();
                        for (int i = 1; i <= rmd.getColumnCount(); i++) types.add(rmd.getColumnTypeName(i));
                        print("resulttypes", String.join(",", types));
                        while (rs.next()) {
                            Array tags = rs.getArray("tags");
                            print("row", rs.getString("run_name"), rs.getString("status"),
                                  rs.getTimestamp("start_time").toInstant(), rs.getDouble("duration_s"),
                                  tags == null ? "null" : Arrays.toString((Object[]) tags.getArray()),
                                  rs.getBoolean("is_cached"));
                        }
                    }
                }
            }
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT * FROM failure_rate('2000-01-01', '2100-01-01')")) {
                while (rs.next()) print("report", rs.getString("pipeline_name"), rs.getLong("runs"), rs.getLong("failed"));
            }
            try (Statement s = c.createStatement()) {
                s.executeUpdate("CREATE TABLE x (a int)");
                print("write", "allowed");
            } catch (SQLException e) {
                print("write", e.getSQLState(), e.getMessage().split("\n")[0]);
            }
        }
    }
}
