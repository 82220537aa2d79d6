import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicBoolean;

/** What the fault harness's Java programs share: they stop when the harness says so. */
final class FaultSupport {
    private FaultSupport() {}

    /**
     * A flag set once standard input closes or says {@code stop} (the harness's signal to
     * finish, flush and report), read by a daemon thread.
     */
    static AtomicBoolean stopOnStdin() {
        AtomicBoolean stop = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null && !line.trim().equals("stop")) {
                    // keep reading
                }
            } catch (Exception e) {
                // stdin gone: stop as well
            }
            stop.set(true);
        });
        stdin.setDaemon(true);
        stdin.start();
        return stop;
    }
}
