/// The effterm version, written into session headers and `effterm --version`.
public enum EffTermVersion {
    public static let string = "0.1.0"
}
