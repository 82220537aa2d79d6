import java.util.concurrent.ExecutionException;

/**
 * Tiny assertion ledger shared by the scenarios. We compile with plain javac and no test
 * framework, so this prints every check as it is made (the output is the report) and turns the
 * tally into the process exit code that compat-tests/java.sh collects.
 */
final class Checks {
    /** A step body that may throw; a throw fails the step but not the whole scenario. */
    interface Step {
        void run() throws Exception;
    }

    private final String scenario;
    private int passed;
    private int failed;

    Checks(String scenario) {
        this.scenario = scenario;
    }

    boolean check(boolean ok, String what) {
        if (ok) {
            passed++;
            System.out.println("  ok    " + what);
        } else {
            failed++;
            System.out.println("  FAIL  " + what);
        }
        return ok;
    }

    /** Equality check that shows both sides on failure, which is what a broker author needs. */
    boolean checkEq(Object expected, Object actual, String what) {
        boolean ok = expected == null ? actual == null : expected.equals(actual);
        return check(ok, ok ? what + " = " + actual : what + ": expected " + expected + ", got " + actual);
    }

    void fail(String what) {
        check(false, what);
    }

    void info(String what) {
        System.out.println("  info  " + what);
    }

    /**
     * Runs one named step. Later steps still run after a failure so one broker bug does not hide
     * the state of every other API; they may fail as a consequence, which the output makes clear.
     */
    void step(String name, Step body) {
        System.out.println("[" + scenario + "] " + name);
        try {
            body.run();
        } catch (Throwable t) {
            fail(name + " threw " + describe(t));
            t.printStackTrace(System.out);
        }
    }

    /** Expects {@code body} to fail with {@code expected} (unwrapping the futures' ExecutionException). */
    void expectThrows(Class<? extends Throwable> expected, String what, Step body) {
        try {
            body.run();
            fail(what + ": expected " + expected.getSimpleName() + " but the call succeeded");
        } catch (Throwable t) {
            Throwable cause = unwrap(t);
            check(expected.isInstance(cause), what + " -> " + describe(cause));
        }
    }

    static Throwable unwrap(Throwable t) {
        while (t instanceof ExecutionException && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    static String describe(Throwable t) {
        Throwable c = unwrap(t);
        return c.getClass().getSimpleName() + ": " + c.getMessage();
    }

    int failures() {
        return failed;
    }

    /**
     * Prints the tally and returns the exit code. Deliberately not phrased "N passed, N failed":
     * only the runner's final line should look like a test-runner summary.
     */
    int finish() {
        System.out.println("[" + scenario + "] " + passed + " checks ok, " + failed + " checks failed");
        return failed == 0 ? 0 : 1;
    }
}
