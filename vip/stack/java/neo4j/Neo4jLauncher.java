import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.config.Setting;
import org.neo4j.io.ByteUnit;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Runs embedded Neo4j with only the Bolt connector, in the foreground, until SIGTERM.
 *
 * <p>Arguments are {@code --name value} pairs; each falls back to the system property
 * {@code vip.neo4j.<name>} and then to a default:
 * {@code --home} (required), {@code --bolt} (127.0.0.1:7687), {@code --pagecache} (128m),
 * {@code --tx-total-max} (256m), {@code --tx-log-rotation} (64m),
 * {@code --tx-log-retention} ("2 files").
 */
public final class Neo4jLauncher {
    private Neo4jLauncher() {}

    public static void main(String[] args) throws InterruptedException {
        Map<String, String> options = parse(args);
        Path home = Path.of(option(options, "home", null)).toAbsolutePath();
        String bolt = option(options, "bolt", "127.0.0.1:7687");
        long pagecache = ByteUnit.parse(option(options, "pagecache", "128m"));
        long txTotalMax = ByteUnit.parse(option(options, "tx-total-max", "256m"));
        long txLogRotation = ByteUnit.parse(option(options, "tx-log-rotation", "64m"));
        String txLogRetention = option(options, "tx-log-retention", "2 files");

        Map<Setting<?>, Object> config = new HashMap<>();
        config.put(BoltConnector.enabled, true);
        config.put(BoltConnector.listen_address, parseAddress(bolt));
        config.put(BoltConnector.advertised_address, parseAddress(bolt));
        config.put(HttpConnector.enabled, false);
        config.put(HttpsConnector.enabled, false);
        config.put(GraphDatabaseSettings.auth_enabled, false);
        config.put(GraphDatabaseSettings.pagecache_memory, pagecache);
        // Without this every new transaction log file is filled to its full rotation size up front.
        config.put(GraphDatabaseSettings.preallocate_logical_logs, false);
        config.put(GraphDatabaseSettings.logical_log_rotation_threshold, txLogRotation);
        config.put(GraphDatabaseSettings.keep_logical_logs, txLogRetention);
        config.put(GraphDatabaseSettings.memory_transaction_global_max_size, txTotalMax);
        // The machine may be offline; the usage report would only add a failing network call.
        config.put(GraphDatabaseSettings.udc_enabled, false);
        // Bolt's two Netty event loop groups each wait a 5 s quiet period on shutdown by default,
        // which made SIGTERM take ~12 s; the databases are checkpointed before this point.
        config.put(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0);
        config.put(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(5));

        DatabaseManagementService service =
                new DatabaseManagementServiceBuilder(home)
                        .setConfig(config)
                        // The user log (neo4j.log in a server install) goes to stdout, which the
                        // stack manager captures; debug.log is written under <home>/logs.
                        .setUserLogProvider(new Log4jLogProvider(System.out, Level.INFO))
                        .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime()
                .addShutdownHook(new Thread(() -> {
                    try {
                        service.shutdown();
                    } finally {
                        stopped.countDown();
                    }
                }, "vip-neo4j-shutdown"));

        String version = org.neo4j.kernel.internal.Version.getNeo4jVersion();
        System.out.println("vip-neo4j ready bolt://" + bolt + " version " + version + " home " + home);
        System.out.flush();
        stopped.await();
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                usage("expected --name value pairs, got " + String.join(" ", args));
            }
            options.put(args[i].substring(2), args[i + 1]);
        }
        return options;
    }

    private static String option(Map<String, String> options, String name, String fallback) {
        String value = options.getOrDefault(name, System.getProperty("vip.neo4j." + name, fallback));
        if (value == null) {
            usage("--" + name + " is required");
        }
        return value;
    }

    private static SocketAddress parseAddress(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0) {
            usage("--bolt must be host:port, got " + hostPort);
        }
        return new SocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    private static void usage(String problem) {
        System.err.println("Neo4jLauncher: " + problem);
        System.err.println("usage: Neo4jLauncher --home DIR [--bolt HOST:PORT] [--pagecache SIZE]"
                + " [--tx-total-max SIZE] [--tx-log-rotation SIZE] [--tx-log-retention POLICY]");
        System.exit(2);
    }
}
