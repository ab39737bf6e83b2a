import Crypto
import Encryption
import Foundation
import TestSupport
import Testing

@Suite final class KeyringTests {
    private var directories: [String] = []

    deinit { self.directories.forEach(TemporaryFile.remove) }

    /// A new temporary directory, removed after the test.
    func directory() -> String {
        let path = Fixtures.directory()
        self.directories.append(path)
        return path
    }

    /// Loads a keyring that must fail. - Returns: the error.
    func failure(_ load: () throws(KeyringError) -> SystemKeyring) -> KeyringError? {
        do {
            _ = try load()
            return nil
        } catch {
            return error
        }
    }

    @Test("a directory of <id>.key files: ids are the names without .key, other files are ignored, whitespace is trimmed")
    func loadsDirectory() throws {
        let directory = self.directory()
        let first = Fixtures.randomBase64()
        let second = Fixtures.randomBase64()
        Fixtures.writeFile(directory, "2024-01.key", first)
        Fixtures.writeFile(directory, "2025-01.key", "  \(second)\n")
        Fixtures.writeFile(directory, "README", "not a key", mode: 0o644)
        let keyring = try SystemKeyring.load(directory: directory, activeKeyID: "2025-01")
        #expect(keyring.keyIDs == ["2024-01", "2025-01"])
        #expect(keyring.activeKeyID == "2025-01")
        #expect(Fixtures.base64(keyring.activeKey) == second)
        #expect(keyring.key("2024-01").map(Fixtures.base64) == first)
        #expect(keyring.key("README") == nil)
        #expect(!"\(keyring)".contains(first) && !"\(keyring)".contains(second))
    }

    @Test("a list of files")
    func loadsFiles() throws {
        let directory = self.directory()
        let path = Fixtures.writeFile(directory, "primary.key", Fixtures.randomBase64())
        let other = Fixtures.writeFile(self.directory(), "old.key", Fixtures.randomBase64())
        let keyring = try SystemKeyring.load(files: [path, other], activeKeyID: "primary")
        #expect(keyring.keyIDs == ["old", "primary"])
    }

    @Test("a missing file, and a path that cannot be read as a file")
    func unreadable() {
        let directory = self.directory()
        let missing = directory + "/gone.key"
        let error = self.failure { () throws(KeyringError) in try SystemKeyring.load(files: [missing], activeKeyID: "gone") }
        guard case .unreadableFile(let path, _) = error else {
            Issue.record("expected unreadableFile, got \(String(describing: error))")
            return
        }
        #expect(path == missing)
        #expect(error!.description.contains(missing))
        let subdirectory = directory + "/dir.key"
        try! FileManager.default.createDirectory(atPath: subdirectory, withIntermediateDirectories: false)
        let directoryError = self.failure { () throws(KeyringError) in
            try SystemKeyring.load(files: [subdirectory], activeKeyID: "dir")
        }
        guard case .unreadableFile = directoryError else {
            Issue.record("expected unreadableFile, got \(String(describing: directoryError))")
            return
        }
        #expect(directoryError!.description.contains(subdirectory))
    }

    @Test("not base64: garbage, and the URL-safe alphabet")
    func notBase64() {
        let directory = self.directory()
        let garbage = Fixtures.writeFile(directory, "a.key", "this is not base64!")
        #expect(self.failure { () throws(KeyringError) in try SystemKeyring.load(files: [garbage], activeKeyID: "a") }
            == .notBase64(path: garbage))
        // 32 bytes whose standard base64 has both '+' and '/', written in the URL alphabet.
        var bytes = [UInt8](repeating: 0xFB, count: 32)
        bytes[1] = 0xFF
        let standard = Data(bytes).base64EncodedString()
        #expect(standard.contains("+") && standard.contains("/"))
        let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let path = Fixtures.writeFile(directory, "b.key", urlSafe)
        let error = self.failure { () throws(KeyringError) in try SystemKeyring.load(files: [path], activeKeyID: "b") }
        #expect(error == .notBase64(path: path))
        #expect(error!.description.contains(path) && !error!.description.contains(urlSafe))
    }

    @Test("not 32 bytes", arguments: [0, 16, 31, 33, 64])
    func wrongSize(count: Int) {
        let directory = self.directory()
        let material = Fixtures.randomBase64(count)
        let path = Fixtures.writeFile(directory, "k.key", material)
        let error = self.failure { () throws(KeyringError) in try SystemKeyring.load(files: [path], activeKeyID: "k") }
        #expect(error == .wrongKeySize(path: path, byteCount: count))
        #expect(error!.description.contains("not 32"))
        if count > 0 { #expect(!error!.description.contains(material)) }
    }

    @Test("a file readable by group or others: says to chmod 600", arguments: [0o640, 0o604, 0o644, 0o660, 0o602])
    func insecurePermissions(mode: Int) {
        let directory = self.directory()
        let material = Fixtures.randomBase64()
        let path = Fixtures.writeFile(directory, "k.key", material, mode: mode)
        let error = self.failure { () throws(KeyringError) in try SystemKeyring.load(directory: directory, activeKeyID: "k") }
        #expect(error == .insecurePermissions(path: path, mode: UInt16(mode)))
        #expect(error!.description.contains("chmod 600 \(path)"))
        #expect(!error!.description.contains(material))
    }

    @Test("a symlinked key file (a mounted secret) is judged by its target's mode")
    func symlink() throws {
        let secrets = self.directory()
        let keys = self.directory()
        let target = Fixtures.writeFile(secrets, "data", Fixtures.randomBase64())
        try FileManager.default.createSymbolicLink(atPath: keys + "/k.key", withDestinationPath: target)
        #expect(try SystemKeyring.load(directory: keys, activeKeyID: "k").keyIDs == ["k"])
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: target)
        #expect(self.failure { () throws(KeyringError) in try SystemKeyring.load(directory: keys, activeKeyID: "k") }
            == .insecurePermissions(path: keys + "/k.key", mode: 0o644))
    }

    @Test("owner-only modes load", arguments: [0o600, 0o400])
    func ownerOnly(mode: Int) throws {
        let directory = self.directory()
        Fixtures.writeFile(directory, "k.key", Fixtures.randomBase64(), mode: mode)
        #expect(try SystemKeyring.load(directory: directory, activeKeyID: "k").keyIDs == ["k"])
    }

    @Test("the active id must be among the keys")
    func activeMissing() {
        let directory = self.directory()
        let material = Fixtures.randomBase64()
        Fixtures.writeFile(directory, "old.key", material)
        let error = self.failure { () throws(KeyringError) in try SystemKeyring.load(directory: directory, activeKeyID: "new") }
        #expect(error == .activeKeyMissing(id: "new", available: ["old"]))
        #expect(error!.description.contains("new.key") && !error!.description.contains(material))
        #expect(throws: KeyringError.activeKeyMissing(id: "x", available: [])) {
            try SystemKeyring(keys: [:], activeKeyID: "x")
        }
    }

    @Test("an empty directory, one without .key files, and one that is not there")
    func emptyOrMissingDirectory() {
        let empty = self.directory()
        #expect(self.failure { () throws(KeyringError) in try SystemKeyring.load(directory: empty, activeKeyID: "k") }
            == .emptyDirectory(path: empty))
        Fixtures.writeFile(empty, "k.pem", Fixtures.randomBase64())
        #expect(self.failure { () throws(KeyringError) in try SystemKeyring.load(directory: empty, activeKeyID: "k") }
            == .emptyDirectory(path: empty))
        let missing = empty + "/nothing-here"
        let error = self.failure { () throws(KeyringError) in try SystemKeyring.load(directory: missing, activeKeyID: "k") }
        guard case .unreadableDirectory(let path, _) = error else {
            Issue.record("expected unreadableDirectory, got \(String(describing: error))")
            return
        }
        #expect(path == missing)
    }

    @Test("two files with the same id, and a file named only .key")
    func badIDs() {
        let one = Fixtures.writeFile(self.directory(), "k.key", Fixtures.randomBase64())
        let two = Fixtures.writeFile(self.directory(), "k.key", Fixtures.randomBase64())
        #expect(self.failure { () throws(KeyringError) in try SystemKeyring.load(files: [one, two], activeKeyID: "k") }
            == .duplicateKeyID(id: "k", paths: [one, two]))
        let nameless = Fixtures.writeFile(self.directory(), ".key", Fixtures.randomBase64())
        #expect(self.failure { () throws(KeyringError) in try SystemKeyring.load(files: [nameless], activeKeyID: "") }
            == .invalidKeyID(path: nameless))
    }
}
